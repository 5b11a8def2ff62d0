"""The results as markdown tables, and the targets checked against them."""

from __future__ import annotations


def verdicts(results: dict) -> list[dict]:
    checks = []
    sections = results["sections"]

    def check(name, value, target, ok):
        checks.append({"metric": name, "value": value, "target": target, "pass": None if ok is None else bool(ok)})

    if "generation" in sections:
        g = sections["generation"]
        check(f"base answers at the scan's defaults (new tokens/s, prefill included; limit "
              f"{g['limit']['new_tokens_per_s']})", f"{g['default_new_tokens_per_s']} "
              f"({g['default_fraction_of_limit']:.0%} of the limit, {g['speedup_over_old_path']}x the old path)",
              ">= 150 (stretch: 230)", g["default_new_tokens_per_s"] >= 150)
        same = min(r["same_as_reference"] for r in g["variants"] if "ours" in r["variant"])
        check("greedy answers identical to transformers generate, one prompt at a time", f"{same:.0%}", ">= 95%",
              same >= 0.95)
    if "scan" in sections:
        s = sections["scan"]
        check(f"generate-mode scan of {s['records']} records vs the reference loop, float32",
              f"{s['speedup']}x ({s['ours_s']} s vs {s['reference_s']} s)", ">= 10x", s["speedup"] >= 10)
        if "bf16" in s:
            b = s["bf16"]
            check("the same in bfloat16",
                  f"{b['speedup']}x ({b['ours_s']} s; dP r {b['dp_pearson_r_vs_float32']} vs float32, "
                  f"{b['same_answers_as_float32']:.0%} same answers)", ">= 10x", b["speedup"] >= 10)
        if "int8" in s:
            q = s["int8"]
            check("the same with int8 dynamic quantisation (a candidate: it must keep dP, r >= 0.95 vs float32)",
                  f"{q['speedup']}x ({q['ours_s']} s; dP r {q['dp_pearson_r_vs_float32']} vs float32, "
                  f"{q['same_answers_as_float32']:.0%} same answers)", "dP r >= 0.95",
                  q["dp_pearson_r_vs_float32"] >= 0.95)
        diff = s["max_abs_dp_diff_where_same"]
        check("dP vs the reference where the answers match", f"max {diff:.1e}" if diff is not None else "n/a",
              "<= 1e-3", diff is not None and diff <= 1e-3)
    if "gpu" in sections:
        gp = sections["gpu"]
        check(f"GPU ({gp['gpu']}): new tokens/s at batch {gp['batch']}", f"{gp['new_tokens_per_s']}", ">= 20000",
              gp["new_tokens_per_s"] >= 20000)
        check("GPU: the example scan in generate mode, fresh process", f"{gp['example_scan_s']} s", "<= 10 s",
              gp["example_scan_s"] <= 10)
    else:
        check("GPU: new tokens/s at batch >= 256; the example scan in generate mode", "not measured (no GPU in this "
              "run)", ">= 20000; <= 10 s", None)
    if "startup" in sections:
        for row in sections["startup"]["commands"]:
            check(f"`{row['command'][:60]}` (fresh process)", f"{row['median_s']} s", "<= 0.5 s", row["median_s"] <= 0.5)
    if "load" in sections:
        lo = sections["load"]
        check("warm model load, fresh process (imports included)", f"{lo['warm_load_s']} s (cold {lo['cold_load_s']} s)",
              "<= 1.5 s", lo["warm_load_s"] <= 1.5)
    if "gate" in sections:
        g = sections["gate"]
        check(f"CI gate: {g['new_records']} new records on a {g['baseline_records']}-record baseline, process start "
              "to exit code", f"{g['seconds_to_verdict']} s", "measured", True)
        if "base_sample" in g:
            b = g["base_sample"]
            check(f"CI gate with --base-sample {b['n']}: the same decisions, process start to exit code",
                  f"{b['seconds_to_verdict']} s, {'same' if b['same_decisions'] else 'DIFFERENT'} decisions",
                  "same decisions", b["same_decisions"])
    if "scoring" in sections:
        s = sections["scoring"]
        check("scoring given pairs (--base-responses none or FILE), batch 8", f"{s['speedup_default_batch']}x", ">= 5x",
              s["speedup_default_batch"] >= 5)
    if "flops" in sections:
        for row in sections["flops"]["batches"]:
            if row["batch"] >= 8:
                check(f"forward FLOP rate, batch {row['batch']} x {row['seq']} tokens",
                      f"{row['fraction_of_mm_peak']:.0%} of mm ({row['gflops_per_s']} GFLOP/s)", ">= 50%",
                      row["fraction_of_mm_peak"] >= 0.5)
    if "memory" in sections:
        m = sections["memory"]
        largest = m["sizes"][-1]
        check(f"peak RSS, {largest['records']}-record scan", f"{largest['peak_rss_gb']} GB "
              f"(+{m['growth_gb_per_10k_records']} GB per 10k records)", "<= 2.5 GB, flat",
              largest["peak_rss_gb"] <= 2.5)
    if "rescan" in sections:
        r = sections["rescan"]
        check(f"rescan with {r['changed_records']}/{r['records']} records changed vs full scan",
              f"{r['ratio']:.1%} ({r['changed_rescan_s']} s / {r['full_scan_s']} s)", "<= 5%", r["ratio"] <= 0.05)
    return checks


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [f"Machine: {m['cpu_model']}, {m['cpu_count']} CPUs, torch {m['torch']} with {m['torch_threads']} threads, "
             f"transformers {m['transformers']}, device {m['device']}"
             + (" (--quick sizes)" if results["quick"] else ""), "",
             "| metric | measured | target | met |", "|---|---|---|---|"]
    met = {True: "yes", False: "NO", None: "not measured"}
    lines += [f"| {c['metric']} | {c['value']} | {c['target']} | {met[c['pass']]} |"
              for c in results["targets"]]
    sections = results["sections"]
    if "generation" in sections:
        g = sections["generation"]
        lines += ["", f"Base answers, {g['prompts']} example prompts (the references on the first "
                      f"{g['reference_prompts']}), up to {g['max_new_tokens']} new tokens; limit "
                      f"{g['limit']['new_tokens_per_s']} new tok/s ({g['limit']['gflop_per_new_token']} GFLOP per token "
                      f"at torch.mm's {g['limit']['mm_gflops_per_s']} GFLOP/s):", "",
                  "| variant | prompts | seconds | new tokens/s | same answers as the reference |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {r['variant']} | {r['prompts']} | {r['seconds']} | {r['new_tokens_per_s']} | "
                  f"{r['same_as_reference']:.0%} |" for r in g["variants"]]
    if "scan" in sections:
        s = sections["scan"]
        lines += ["", f"Generate-mode scan, {s['records']} records: ours {s['ours_s']} s, the reference loop "
                      f"{s['reference_s']} s ({s['speedup']}x); same answers {s['same_answers']:.0%}, largest dP "
                      f"difference where they match {s['max_abs_dp_diff_where_same']}."
                  + (f" In bfloat16: {s['bf16']['ours_s']} s ({s['bf16']['speedup']}x)." if "bf16" in s else "")
                  + (f" With int8 dynamic quantisation: {s['int8']['ours_s']} s ({s['int8']['speedup']}x)."
                     if "int8" in s else "")]
    if "startup" in sections:
        lines += ["", "| command (fresh process) | median s | min | max |", "|---|---:|---:|---:|"]
        lines += [f"| `{r['command']}` | {r['median_s']} | {r['min_s']} | {r['max_s']} |"
                  for r in sections["startup"]["commands"]]
    if "gate" in sections:
        g = sections["gate"]
        lines += ["", f"CI gate: {g['new_records']} new records on a {g['baseline_records']}-record baseline: "
                      f"{g['seconds_to_verdict']} s from process start to exit code {g['exit']}."]
        if "base_sample" in g:
            b = g["base_sample"]
            lines += [f"With --base-sample {b['n']}: {b['seconds_to_verdict']} s to exit code {b['exit']}; gates "
                      f"{', '.join(g['gates'])}: {'the same' if b['same_decisions'] else 'DIFFERENT'} decisions."]
    if "scoring" in sections:
        s = sections["scoring"]
        lines += ["", f"Scoring, {s['samples']} example samples ({s['tokens']} tokens), layers {s['layers']} "
                      f"(the reference does {s['reference_over_ours_flops_per_token']}x our matmul FLOPs per token):", "",
                  "| variant | tokens/s | vs reference | max abs diff | note |", "|---|---|---|---|---|"]
        ref = s["variants"][0]["tokens_per_s"]
        lines += [f"| {r['variant']} | {r['tokens_per_s']} | {r['tokens_per_s'] / ref:.2f}x | "
                  f"{r['max_abs_diff_vs_reference']:.1e} | {r['note']} |" for r in s["variants"]]
    if "flops" in sections:
        f = sections["flops"]
        lines += ["", f"Forward FLOP rate ({f['layers_run']} of {f['of_layers']} layers; torch.mm fp32 "
                      f"{f['mm_gflops_per_s']} GFLOP/s by size, {f['threads']} threads):", "",
                  "| batch x seq | GFLOP/s | of mm peak | tokens/s | mm at MLP shape, GFLOP/s |", "|---|---|---|---|---|"]
        lines += [f"| {r['batch']} x {r['seq']} | {r['gflops_per_s']} | {r['fraction_of_mm_peak']:.0%} | "
                  f"{r['tokens_per_s']} | {r['mm_rate_at_mlp_shape_gflops']} |" for r in f["batches"]]
    if "memory" in sections:
        mem = sections["memory"]
        lines += ["", f"Peak RSS of `{mem['command']}`:", "", "| records | peak RSS (GB) | seconds | records/s |",
                  "|---|---|---|---|"]
        lines += [f"| {r['records']} | {r['peak_rss_gb']} | {r['seconds']} | {r['records_per_s']} |" for r in mem["sizes"]]
    if "rescan" in sections:
        r = sections["rescan"]
        lines += ["", f"Rescan: full {r['full_scan_s']} s, {r['changed_records']} of {r['records']} records changed "
                      f"{r['changed_rescan_s']} s, nothing changed {r['unchanged_rescan_s']} s."]
    return "\n".join(lines)
