"""One fresh process of the subprocess sections: `child.py load` (model load times) or `child.py scan ARGS...`
(a dataset-audit command); writes its timings and peak RSS (VmHWM) as JSON to $BENCH_RESULT."""

import json
import os
import sys
import time

start = time.perf_counter()


def main(mode: str, args: list[str]) -> dict:
    result = {}
    if mode == "load":
        from auditor.model.loading import load_model
        imported = time.perf_counter()
        load_model("default")
        loaded = time.perf_counter()
        load_model("default")  # again in the same process: the file loading alone, every import done
        result.update(import_s=imported - start, load_s=loaded - imported, reload_s=time.perf_counter() - loaded)
    else:
        from auditor.cli import main as dataset_audit
        try:
            dataset_audit(args, standalone_mode=False)
        except SystemExit as exc:
            result["exit"] = exc.code
    result["wall_s"] = time.perf_counter() - start
    status = open("/proc/self/status").read().split("\n")
    for key in ("VmHWM", "VmRSS"):
        line = next((l for l in status if l.startswith(key + ":")), None)
        if line:
            result[key] = int(line.split()[1]) * 1024
    return result


if __name__ == "__main__":
    with open(os.environ["BENCH_RESULT"], "w") as fh:
        json.dump(main(sys.argv[1], sys.argv[2:]), fh)
