"""Every command's settings: dataclasses whose field metadata (help, choices, range) drives the command-line
options, the config-file check and the Python API alike, so a value is checked the same way wherever it comes from."""

from __future__ import annotations

import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

from .errors import AuditError

DEFAULT_MODEL = "default"
DEFAULT_TRAITS = ("evil", "sycophantic", "hallucinating")
DEFAULT_THRESHOLD = 0.5
GENERATE, NO_BASE = "generate", "none"  # --base-responses: generate, none, or a file of answers
STEERING_MODES = ("steer", "ablate")
DECODING_RULE = 2  # how base answers are decoded beyond the settings; 2: the repetition penalty spares special tokens
_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")  # --shard I/N
CONFIG_FILE = "dataset-audit.toml"
PYPROJECT_TABLE = "dataset-audit"  # [tool.dataset-audit] in pyproject.toml


@dataclass(frozen=True)
class Spec:
    """What a setting accepts and how it is explained (`--help`, error messages)."""

    help: str
    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    min_open: bool = False  # the minimum itself is not allowed
    metavar: str | None = None
    commas: bool = False  # on the command line: one comma-separated value, not a repeated option
    # What a value changes, read by the checks that compare settings across runs:
    measures: bool = False  # the projection of given tokens (model, dtype): part of the projection cache's key
    scores: bool = False  # a sample's dP or score: a --baseline made with another value is refused
    shared: bool = False  # the scan as a whole: the shards of one scan must agree on it (merge)
    cli_only: bool = False  # only the command line acts on it (outputs, gates, console): auditor.scan() refuses it

    @property
    def changes_scores(self) -> bool:
        return self.scores or self.measures

    @property
    def must_match(self) -> bool:
        """Whether the shards of one scan must agree on it: everything that changes a score, and `shared`."""
        return self.shared or self.changes_scores


def setting(default: object = MISSING, *, factory: object = MISSING, **spec) -> typing.Any:
    """A dataclass field with its Spec."""
    return field(default=default, default_factory=factory, metadata={"spec": Spec(**spec)})  # type: ignore[call-overload]


def spec_of(cls: type, name: str) -> Spec:
    return next(f for f in fields(cls) if f.name == name).metadata["spec"]


def flagged(cls: type, test: typing.Callable[[Spec], bool]) -> tuple[str, ...]:
    """The names of `cls`'s settings whose Spec passes `test` (e.g. `lambda s: s.changes_scores`), in field order."""
    return tuple(f.name for f in fields(cls) if test(f.metadata["spec"]))


def settings_classes() -> list[type]:
    """Every settings dataclass (the subclasses of Checked), for naming settings in messages."""
    found, todo = [], list(Checked.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


_NAMES = {str: ("a string", "strings"), int: ("an integer", "integers"), float: ("a number", "numbers"),
          bool: ("true or false", "booleans")}


def _matches(value: object, hint: object) -> bool:
    """Whether a TOML/Python value fits a field type (an int for a float is fine, a bool for an int is not)."""
    if isinstance(hint, types.UnionType):
        return any(_matches(value, arm) for arm in typing.get_args(hint))
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is type(None):
        return value is None
    return isinstance(value, hint)  # type: ignore[arg-type]


def _describe(hint: object) -> str:
    if isinstance(hint, types.UnionType):
        return " or ".join(_describe(arm) for arm in typing.get_args(hint) if arm is not type(None))
    if typing.get_origin(hint) is list:
        return f"a list of {_NAMES[typing.get_args(hint)[0]][1]}"
    return _NAMES[typing.cast(type, hint)][0]


def _problem(spec: Spec, hint: object, value: object) -> str | None:
    """Why `value` does not fit the setting, or None."""
    if not _matches(value, hint):
        return f"must be {_describe(hint)}, got {value!r}"
    if spec.choices and value is not None and value not in spec.choices:
        return f"must be one of {', '.join(spec.choices)}, got {value!r}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if spec.min is not None and (value <= spec.min if spec.min_open else value < spec.min):
            return f"must be {'over' if spec.min_open else 'at least'} {spec.min:g}, got {value!r}"
        if spec.max is not None and value > spec.max:
            return f"must be at most {spec.max:g}, got {value!r}"
    return None


def check_settings(values: Mapping[str, object], origin: str, cls: type | None = None) -> dict[str, typing.Any]:
    """`values` keyed by field names (`batch-size` or `batch_size`) of `cls` [ScanConfig], checked for name, type,
    choice and range. Raises AuditError naming `origin` (a file, or the API) and the offending key."""
    cls = cls or ScanConfig
    hints = typing.get_type_hints(cls)
    checked = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in hints:
            known = ", ".join(f.name.replace("_", "-") for f in fields(cls))
            raise AuditError(f"{origin}: unknown setting '{key}' (known: {known})")
        if problem := _problem(spec_of(cls, name), hints[name], value):
            raise AuditError(f"{origin}: setting '{key}' {problem}")
        checked[name] = value
    return checked


class Checked:
    """A settings dataclass that checks every field against its Spec when it is made."""

    def __post_init__(self) -> None:
        check_settings({f.name: getattr(self, f.name) for f in fields(typing.cast(typing.Any, self))},
                       type(self).__name__, type(self))


MODEL_HELP = "'default' (the embedded SmolLM2-135M-Instruct), a local HF model or LoRA adapter folder, or a hub id."


@dataclass
class ModelSettings(Checked):
    """Which model runs, where, and how many sequences go through it at once."""

    model: str = setting(DEFAULT_MODEL, measures=True, help=MODEL_HELP)
    device: str = setting("auto", choices=("auto", "cpu", "cuda", "mps"),
                          help="Where to run the model; auto: cuda, then mps, then cpu.")
    dtype: str = setting("auto", choices=("auto", "float32", "bfloat16", "float16"), measures=True,
                         help="auto: bfloat16 on GPUs; float32 on CPUs, except bfloat16 for the embedded model on "
                              "CPUs with bf16 instructions where the shipped evidence says its scores hold "
                              "(docs/performance.md).")
    trust_remote_code: bool = setting(False, measures=True, help="Run custom model code from the model folder or hub "
                                                  "(only for models you trust).")
    batch_size: int = setting(8, min=1, help="Sequences per forward pass.")


@dataclass
class VectorChoice(Checked):
    """Which traits are measured, and with which vector files (scan, evaluate, monitor, shift)."""

    traits: list[str] = setting(factory=lambda: list(DEFAULT_TRAITS), shared=True, commas=True,
                                help="Comma-separated built-in trait names or trait JSON files.")
    vectors: list[str] = setting(factory=list, scores=True, metavar="FILE",
                                 help="Persona-vector .safetensors file to use instead of the built-in one "
                                      "(repeatable).")


@dataclass
class ScanConfig(VectorChoice, ModelSettings):
    """Everything a scan run is given: what to read, how to score, how to gate and report (see manifest.json)."""

    inputs: list[str] = setting(factory=list, metavar="DATA",
                                help="Data files or folders (JSONL[.gz], JSON, Parquet, CSV, saved HF datasets).")
    out: str = setting("audit-out", cli_only=True, metavar="DIR",
                       help="Output folder: new, empty, or a previous scan's (its outputs are replaced).")
    force: bool = setting(False, cli_only=True,
                          help="Write into --out even when it holds other files (they are left as they are).")
    base_responses: str = setting(GENERATE, scores=True, metavar="MODE",
                                  help="'generate' (the model answers each prompt; cached), 'none' (cheap: no base "
                                       "answers), or a chat file whose last assistant turns are the base answers.")
    limit: int | None = setting(None, shared=True, min=1, metavar="N", help="Read only the first N records.")
    max_tokens: int = setting(512, scores=True, min=16,
                              help="Cap on prompt + response tokens; longer samples are truncated and marked.")
    max_new_tokens: int = setting(64, scores=True, min=1, help="Length of generated base answers.")
    base_sample: int | None = setting(None, scores=True, min=1, metavar="N",
                                      help="Generate base answers for N records only, a seeded random sample (the "
                                           "same N every run, so a rerun computes nothing again); the other records' "
                                           "dP is estimated from the sample's mean base projection (marked "
                                           "base_estimated), and each trait's mean dP gets a 95% interval that counts "
                                           "the sampling, which a mean_dp gate uses. N at least the records scanned: "
                                           "a full scan.")
    base_sample_seed: int = setting(0, scores=True, metavar="SEED",
                                    help="Which records --base-sample draws (another seed, another sample).")
    gen_batch_size: int = setting(64, scores=True, min=1,
                                  help="Prompts answered together when generating base answers (--batch-size is for "
                                       "scoring passes).")
    turns: str = setting("last", scores=True, choices=("last", "all"),
                         help="Score the last assistant turn, or every assistant turn (averaged).")
    threshold: float = setting(DEFAULT_THRESHOLD, shared=True,
                               help="Flag a sample when its calibrated <trait>_score is at least this.")
    top: int = setting(10, cli_only=True, min=0,
                       help="Rows in the printed table, and annotations / summary rows with --format github.")
    group_by: str | None = setting(None, shared=True, metavar="FIELD",
                                   help="Also break the results down by this top-level field of each input record "
                                        "(e.g. vendor): per value, the scored records, each trait's mean dP with a "
                                        "95% bootstrap interval and its flagged share (in summary.json, the printed "
                                        "table and the report; records without the field form the group "
                                        "'(missing)'). They are always broken down by source file.")
    fail_on: list[str] = setting(factory=list, cli_only=True, metavar="EXPR",
                                 help="Exit 1 when a gate fails (repeatable): 'evil>=0.8' (any sample's evil_score "
                                      "at or over 0.8), 'evil:flagged>1%' or 'evil:flagged>3' (share or count of "
                                      "flagged samples over), 'evil:mean_dp>0.1' (mean dP over; with --base-sample, "
                                      "the low end of its interval), "
                                      "'evil:predicted>0.02' (the low end of the predicted fine-tuning change over). "
                                      "With --baseline, "
                                      "only new/changed samples count.")
    baseline: str | None = setting(None, metavar="PREV_SCORES",
                                   help="A previous scan's scores.parquet (same traits): records found in it by "
                                        "sample_id reuse its scores and are not computed; gates and CI outputs "
                                        "cover only the other records.")
    format: str = setting("text", cli_only=True, choices=("text", "github"),
                          help="github: also print ::error/::warning annotations for the top flagged samples and "
                               "append a markdown summary to $GITHUB_STEP_SUMMARY.")
    junit: str | None = setting(None, cli_only=True, metavar="FILE",
                                help="Write JUnit XML: one testcase per --fail-on gate.")
    sarif: str | None = setting(None, cli_only=True, metavar="FILE",
                                help="Write SARIF 2.1.0: one result per flagged sample (error if it breaks a failed "
                                     "gate), for GitHub code scanning.")
    shard: str | None = setting(None, metavar="I/N",
                                help="Score only shard I of N (0-based): the records at input positions I, I+N, "
                                     "I+2N, ... Run all N (e.g. a SLURM array) into separate --out folders, then "
                                     "`dataset-audit merge`.")
    engine: str = setting("local", choices=("local", "ray"),
                          help="local: this process; ray: a Ray Data pipeline on a Ray cluster "
                               "(pip install 'dataset-audit[ray]').")
    address: str | None = setting(None, metavar="ADDR",
                                  help="Ray cluster to join with --engine ray (e.g. ray://head:10001) "
                                       "[default: $RAY_ADDRESS, else a local Ray instance].")
    num_gpus_per_worker: float = setting(0.0, min=0, help="GPUs each Ray model actor reserves (fractions share "
                                                          "a GPU).")
    concurrency: int = setting(1, min=1, help="Ray model actors per stage (each loads the model once).")
    generator: str = setting("transformers", scores=True, choices=("transformers", "vllm"),
                             help="What writes base answers: transformers, or vllm on a GPU "
                                  "(pip install 'dataset-audit[vllm]'); scoring always uses transformers.")

    def __post_init__(self) -> None:
        """Settings that cannot work together, as one usage error each (before any reading or model work)."""
        super().__post_init__()
        if self.shard:
            shard_numbers(self.shard)
        if self.generator == "vllm" and not self.generates:
            raise AuditError("writes base answers, so it needs `base_responses` generate", "generator", "vllm")
        if self.engine == "ray":
            if self.shard:
                raise AuditError("splits a local scan; `engine` ray spreads the whole scan over the cluster", "shard")
            if self.baseline:
                raise AuditError("works with the local engine only (drop `engine` ray)", "baseline")
        self._check_base_sample()

    def _check_base_sample(self) -> None:
        if self.base_sample is None:
            if self.base_sample_seed:
                raise AuditError("goes with `base_sample`", "base_sample_seed", self.base_sample_seed)
            return
        if not self.generates:
            raise AuditError("samples the model's own answers, so it needs `base_responses` generate", "base_sample",
                             self.base_sample)
        if self.engine == "ray":
            raise AuditError("works with the local engine only (drop `engine` ray)", "base_sample", self.base_sample)
        if self.shard:
            raise AuditError("draws one sample for the whole scan, which `shard` would split (drop one of them)",
                             "base_sample", self.base_sample)

    @property
    def generates(self) -> bool:
        """Whether the model writes its own base answers."""
        return self.base_responses == GENERATE

    @property
    def base_file(self) -> str | None:
        """The file of given base answers, if that is what --base-responses names."""
        return None if self.base_responses in (GENERATE, NO_BASE) else self.base_responses


def shard_numbers(text: str) -> tuple[int, int]:
    """(I, N) of a `shard` setting "I/N", checked: 0 <= I < N."""
    match = _SHARD.fullmatch(text)
    if not match:
        raise AuditError("expected I/N, e.g. 0/4 (the first of 4 shards)", "shard", text)
    index, count = int(match[1]), int(match[2])
    if count < 1 or index >= count:
        raise AuditError(f"I must be 0 to N-1 and N at least 1 (e.g. 0/{max(count, 2)})", "shard", text)
    return index, count


@dataclass
class TrainConfig(ModelSettings):
    """What a training run is given (written to `training.json` next to the saved model)."""

    inputs: list[str] = setting(factory=list, metavar="DATA", help="Training data (any format `scan` reads).")
    out: str = setting("train-out", metavar="DIR",
                       help="Folder for the adapter (or full model), tokenizer, training.json and losses.json.")
    steer: list[str] = setting(factory=list, metavar="TRAIT=COEF",
                               help="Preventative steering during training: add COEF * the trait's vector at its "
                                    "layer at every position (repeatable; TRAIT is a trait name or a .safetensors "
                                    "vector file). With --mode ablate give just TRAIT.")
    layer: int | None = setting(None, min=1, help="Steer at this layer instead of each vector's own.")
    mode: str = setting("steer", choices=STEERING_MODES,
                        help="steer: add COEF * v; ablate: project the direction out of the residual stream (CAFT).")
    shift_penalty: float = setting(0.0, min=0, metavar="PENALTY",
                                   help="Add PENALTY * mean squared change of each --steer trait's projection "
                                        "(response tokens) to the loss; 0 is off.")
    full: bool = setting(False, help="Train all weights instead of LoRA adapters.")
    lora_r: int = setting(32, min=1, help="LoRA rank.")
    lora_alpha: int = setting(64, min=1, help="LoRA scaling alpha.")
    lora_dropout: float = setting(0.0, min=0, max=1, help="LoRA dropout.")
    lr: float = setting(1e-5, min=0, min_open=True, help="AdamW learning rate (constant).")
    epochs: int = setting(1, min=1, help="Passes over the data.")
    max_steps: int | None = setting(None, min=1, help="Stop after this many optimizer steps.")
    grad_accum: int = setting(1, min=1, help="Batches per optimizer step.")
    max_tokens: int = setting(512, min=16, help="Cap on prompt + response tokens per example.")
    seed: int = setting(0, help="Seed of the batch order, LoRA initialisation and dropout.")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.shift_penalty and not self.steer:
            raise AuditError("needs the traits to hold still: give them with `steer`", "shift_penalty")


@dataclass
class ExtractSettings(ModelSettings):
    """How answers are generated and judged, which pairs are kept, and how vectors are fitted."""

    batch_size: int = setting(16, min=1, help="Sequences per generation batch and forward pass.")
    judge: str = setting("none", metavar="SPEC",
                         help="Who scores the answers 0-100 for the trait and for coherence: 'none' (keep every "
                              "pair), 'local:PATH' (a local HF causal LM, by the logprobs of its next token) or "
                              "'openai-compatible:URL' (POST URL/chat/completions, top-20 logprobs of the first "
                              "token).")
    judge_model: str = setting("gpt-4.1-mini", help="Model name sent to an openai-compatible judge.")
    api_key_env: str = setting("OPENAI_API_KEY", metavar="VAR",
                               help="Environment variable holding the openai-compatible judge's API key (sent as a "
                                    "Bearer token when set; never written anywhere).")
    judge_concurrency: int = setting(8, min=1, help="Requests to an openai-compatible judge in flight at once.")
    samples_per_question: int = setting(1, min=1, help="Answers per question and system prompt (the paper: 10, at "
                                                       "--temperature 1).")
    temperature: float = setting(0.0, min=0, help="0: greedy answers (one sample); above 0: sampled, reproducibly.")
    max_new_tokens: int = setting(48, min=1, help="Length of each generated answer.")
    trait_threshold: float = setting(50.0, min=0, max=100,
                                     help="Keep a pair if the judge's trait score is at least this for the pos "
                                          "answer and under it for the neg answer.")
    coherence_threshold: float = setting(50.0, min=0, max=100,
                                         help="Keep a pair only if both answers' coherence scores are at least this.")
    with_examples: bool = setting(False, help="Also average in the trait's authored (trait, neutral) answers, when "
                                              "it has them.")
    from_examples: bool = setting(False, help="Use only the trait's authored answers: no generation, no judge "
                                              "(how the shipped vectors are built).")
    from_pairs: str | None = setting(None, metavar="FILE",
                                     help="Fit on your own labelled pairs instead: records with 'trait' and 'neutral' "
                                          "answers beside their prompt, or with --neutral, the trait answers of two "
                                          "files in prompt order (any format scan reads). TRAIT can be a new name.")
    neutral: str | None = setting(None, metavar="FILE",
                                  help="With --from-pairs: the neutral answers, record by record.")
    folds: int = setting(5, min=2, help="With --from-pairs: the layer is chosen by k-fold cross-validated AUROC.")
    flags: str | None = setting(None, choices=("above", "below"),
                                help="With --from-pairs: 'below' when samples are a concern below the model's own "
                                     "answers (like refusal) [default: the trait's own, else above].")
    layer: int | None = setting(None, min=0, help="Use this layer instead of the best held-out separation.")
    out: str | None = setting(None, metavar="FILE",
                              help="Vector file to write [default: ./TRAIT.MODEL.safetensors]. The prompt-token "
                                   "variants go beside it (FILE_STEM.prompt_avg/.prompt_last.safetensors), the report "
                                   "to FILE_STEM.html.")
    report: bool = setting(True, help="Write the HTML extraction report.")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.from_examples and (self.judge != "none" or self.with_examples):
            raise AuditError("uses only the authored answers: drop `judge` and `with_examples`", "from_examples")
        if self.from_pairs and (self.from_examples or self.judge != "none" or self.with_examples):
            raise AuditError("fits on your pairs alone: drop `from_examples`, `judge` and `with_examples`",
                             "from_pairs")
        if (self.neutral or self.flags) and not self.from_pairs:
            raise AuditError("`neutral` and `flags` go with `from_pairs`")
        if self.samples_per_question > 1 and not self.temperature:
            raise AuditError("above 1 needs `temperature` above 0 (greedy answers repeat)", "samples_per_question")


@dataclass
class EvaluateSettings(Checked):
    """How `evaluate` labels the data and where its results go (the scan itself: ScanConfig)."""

    control: list[str] = setting(factory=list, metavar="FILE",
                                 help="Control data (repeatable): DATA is then the trait-inducing side, for every "
                                      "trait scanned.")
    label_field: str = setting("label", metavar="FIELD",
                               help="Without --control: the record field naming the trait a record carries, "
                                    "'inducing' (every trait) or 'control'.")
    json: str | None = setting(None, metavar="FILE", help="Also write the metrics as JSON to FILE ('-': stdout).")
    benchmark: str | None = setting(None, metavar="NAME",
                                    help="Record the results in a detection card under this benchmark name: scans "
                                         "then show each trait's verdict (validated / partly validated / "
                                         "not validated) beside its scores.")
    card: str | None = setting(None, metavar="FILE",
                               help="The detection card to update with --benchmark [default: CACHE/cards/MODEL.json, "
                                    "which scans read].")


@dataclass
class FilterSettings(Checked):
    """Which records of a scan `filter` keeps, and where the kept and rejected ones go."""

    max_scores: list[str] = setting(factory=list, metavar="TRAIT=SCORE",
                                    help="Reject records whose <trait>_score is over SCORE (repeatable, e.g. --max "
                                         "evil=0.8).")
    min_scores: list[str] = setting(factory=list, metavar="TRAIT=SCORE",
                                    help="Reject records whose <trait>_score is under SCORE (repeatable, e.g. --min "
                                         "refusal=-0.8 for a trait flagged below the model's answers).")
    drop_flagged: bool = setting(False, help="Reject records flagged for any trait by the scan.")
    decisions: str | None = setting(None, metavar="FILE",
                                    help="A reviewer's decisions, exported from the report's flagged samples: records "
                                         "marked drop are rejected, records marked keep are kept even if a rule above "
                                         "rejects them.")
    out: str | None = setting(None, metavar="FILE",
                              help="Where to write the kept records (JSONL); never one of the scan's inputs.")
    rejected: str | None = setting(None, metavar="FILE",
                                   help='Where to write the rejected records: JSON lines {"source", "line", "reason", '
                                        '"record"}; never one of the scan\'s inputs.')
    in_place: bool = setting(False, help="Instead of --out, replace each input (JSONL files only) with its kept "
                                         "records, atomically; the rejected records go to --rejected, else to "
                                         "NAME.rejected.jsonl beside each input NAME.jsonl.")


@dataclass
class MergeSettings(Checked):
    """Where `merge` writes the merged scan (its gates and CI outputs: ScanConfig's)."""

    out: str = setting(metavar="DIR", help="Folder for the merged scan.")


@dataclass
class ReportSettings(Checked):
    """What `report` renders, and where."""

    out: str | None = setting(None, metavar="FILE", help="HTML file to write [default: DIR/report.html].")
    samples_per_trait: int = setting(200, min=1, help="Flagged samples listed per trait.")


@dataclass(kw_only=True)
class SteerSettings(ModelSettings):
    """What `steer` adds to the residual stream, and how long its answers are."""

    vector: str = setting("evil", metavar="TRAIT|FILE",
                          help="A trait name (its built-in or cached vector) or a .safetensors vector file.")
    coef: float = setting(metavar="COEF",
                          help="Multiple of the vector added at every position; negative values suppress the trait.")
    layer: int | None = setting(None, min=1, help="Steer at this layer instead of the vector's own.")
    max_new_tokens: int = setting(64, min=1, help="Length of each answer.")
    compare: bool = setting(True, help="Also print the unsteered answer.")


@dataclass
class MonitorSettings(VectorChoice, ModelSettings):
    """What `monitor` projects, and where its rows go."""

    json: str | None = setting(None, metavar="FILE", help="Also write the rows as JSON to FILE.")


@dataclass(kw_only=True)
class ShiftSettings(VectorChoice, ModelSettings):
    """Which two models `shift` compares (`model` is the base), and where its shifts go."""

    finetuned: str = setting(metavar="M2",
                             help="The fine-tuned model: a LoRA adapter folder (e.g. from `train`) or a model "
                                  "folder/hub id.")
    json: str | None = setting(None, metavar="FILE", help="Also write the shifts as JSON to FILE.")


def find_config_file(directory: Path) -> Path | None:
    """`dataset-audit.toml` in `directory`, else its `pyproject.toml` if that has a [tool.dataset-audit] table."""
    own, pyproject = directory / CONFIG_FILE, directory / "pyproject.toml"
    if own.is_file():
        return own
    if pyproject.is_file() and PYPROJECT_TABLE in _read_toml(pyproject).get("tool", {}):
        return pyproject
    return None


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise AuditError(f"{path}: invalid TOML ({exc})") from None
    except OSError as exc:
        raise AuditError(f"{path}: cannot read ({exc.strerror})") from None


def read_config_file(path: Path) -> dict[str, typing.Any]:
    """The checked settings of a config file: a `pyproject.toml`'s [tool.dataset-audit] table, or a whole
    `dataset-audit.toml` (any other name is read like dataset-audit.toml)."""
    data = _read_toml(path)
    if path.name == "pyproject.toml":
        if PYPROJECT_TABLE not in data.get("tool", {}):
            raise AuditError(f"{path}: no [tool.{PYPROJECT_TABLE}] table")
        return check_settings(data["tool"][PYPROJECT_TABLE], f"{path} [tool.{PYPROJECT_TABLE}]")
    return check_settings(data, str(path))


@dataclass
class CalibrateConfig(ModelSettings):
    """What a calibration study is given: the training sets, the one fine-tuning recipe, the held-out probes."""

    inputs: list[str] = setting(factory=list, metavar="SETS",
                                help="Training sets: files or folders (any format `scan` reads), each as "
                                     "SOURCE:PATH or PATH (source: the parent folder's name).")
    out: str = setting("calibration-out", metavar="DIR",
                       help="Study folder: calibration.json, base.json and one sets/NAME.json per finished set "
                            "(reused when the command runs again).")
    traits: list[str] = setting(factory=lambda: [*DEFAULT_TRAITS, "refusal"], commas=True,
                                help="Comma-separated built-in trait names or trait JSON files.")
    vectors: list[str] = setting(factory=list, metavar="FILE",
                                 help="Persona-vector .safetensors file to use instead of the built-in one "
                                      "(repeatable).")
    pairs: list[str] = setting(factory=list, metavar="TRAIT=FILE",
                               help="Held-out labelled pairs (records with 'trait' and 'neutral' answers beside the "
                                    "prompt) measured as the model's preference for the trait answer (repeatable; "
                                    "the measure is named after the file).")
    refusal_prompts: str | None = setting(None, metavar="FILE",
                                          help="Held-out harmful requests (.txt, one per line, or JSONL prompts): "
                                               "adds the refusal rate of the model's answers.")
    card: str | None = setting(None, metavar="FILE",
                               help="Also write the fits into this card.json (its 'calibration' block).")
    probe_limit: int | None = setting(None, min=1, metavar="N",
                                      help="Measure on at most the first N items of each probe (authored eval split, "
                                           "--pairs file, --refusal-prompts): faster, coarser.")
    steps: int = setting(10, min=1, help="Optimizer steps of every fine-tuning run.")
    lr: float = setting(2e-4, min=0, min_open=True, help="LoRA learning rate (AdamW, constant).")
    lora_r: int = setting(32, min=1, help="LoRA rank.")
    lora_alpha: int = setting(64, min=1, help="LoRA scaling alpha.")
    seed: int = setting(0, help="Seed of every fine-tuning run.")
    max_tokens: int = setting(256, min=16, help="Cap on prompt + response tokens per training and scored example.")
    max_new_tokens: int = setting(64, min=1, help="Length of generated base answers (generate mode).")
