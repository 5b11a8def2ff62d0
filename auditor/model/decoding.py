"""A lean decoder for Llama-family models (Llama, SmolLM, Mistral, Qwen2): base answers at the CPU's speed.

The model's own modules do the embeddings, norms, projections, rotary embeddings and MLPs; ours are the
attention over a preallocated KV cache, the loop and the bookkeeping: logits for the last position only, a
repetition penalty that spares special tokens, a per-row stop with finished rows dropped from the batch,
the tokens every prompt of a batch starts with computed once, and the hidden states of the requested
layers summed as each answer is written. Forward hooks on the decoder blocks (steering) apply
as they do in a transformers forward.

`transformers.generate` spends about half its time on machinery a short greedy answer does not need
(concatenating the cache, building masks, logits processors over the whole vocabulary); see
benchmarks/performance/ (section generation). Models this decoder does not support use `generate`
(auditor.model.transformers_generation), with the same settings.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .activations import length_batches
from .layers import decoder_body
from .loading import LoadedModel

SUPPORTED = ("llama", "mistral", "qwen2")  # blocks of RMSNorm, q/k/v/o projections, rotary and a gated MLP
COMPACT_AT = 0.75  # drop finished rows once the rows still writing are this share of the batch or fewer
GROUP_SPREAD, GROUP_SLACK = 1.3, 8  # prefill groups: longest prompt <= 1.3 x shortest + 8 tokens (the rest pads)
OPENING = 16  # a prompt's opening: its first 16 tokens (PromptLayout.sharing, generation.prompt_batches)
SAMPLE_TOKENS = 4096  # sample responses run on the prompt cache in groups of at most this many rows x tokens


def supports(lm: LoadedModel) -> bool:
    """Whether this decoder runs the model as transformers would (else `generate` does)."""
    config, layer, body = lm.model.config, lm.decoder_layers[0], decoder_body(lm.model)
    hooked = [lm.model.get_input_embeddings(), *lm.decoder_layers]
    return (getattr(config, "model_type", "") in SUPPORTED and not getattr(config, "sliding_window", None)
            and all(hasattr(layer, name) for name in ("input_layernorm", "post_attention_layernorm", "mlp"))
            and all(hasattr(layer.self_attn, name) for name in ("q_proj", "k_proj", "v_proj", "o_proj", "scaling"))
            and not hasattr(layer.self_attn, "q_norm") and hasattr(body, "rotary_emb")
            and not any(m._forward_pre_hooks or m._forward_hooks_with_kwargs for m in hooked))


@dataclass
class Decoded:
    """What one batch decoded: the answers (token ids, end token excluded; an answer that ended at once keeps
    it) and, per requested layer, the mean hidden state over each answer's tokens [rows, layers, hidden] (NaN
    where an answer ended at once) and over each given sample response run on the prompt's cache."""

    answers: list[list[int]]
    means: np.ndarray
    sample_means: np.ndarray


def _hooked(module: torch.nn.Module, inputs: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """`output` after the module's forward hooks, as a transformers forward would give it."""
    for hook in module._forward_hooks.values():
        result = hook(module, (inputs,), output)
        output = output if result is None else result
    return output


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


class Decoder:
    """Forward passes of one model over a batch, with a KV cache it writes at given slots."""

    body: Any  # a Llama-family body (embed_tokens, rotary_emb, norm), as `supports` checked

    def __init__(self, lm: LoadedModel):
        self.lm = lm
        config = lm.model.config
        self.heads, self.kv_heads = config.num_attention_heads, config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.body, self.head = decoder_body(lm.model), lm.model.get_output_embeddings()

    def rows_that_fit(self, slots: int) -> int:
        """How many rows of `slots` a batch may hold: on CUDA, what half the free memory holds (each row's keys and
        values in every block, its logits and a few hidden states); elsewhere no limit."""
        weight = self.body.embed_tokens.weight
        if weight.device.type != "cuda":
            return 1 << 30
        config = self.lm.model.config
        per_row = (2 * len(self.lm.decoder_layers) * self.kv_heads * slots * self.head_dim * weight.element_size()
                   + 4 * (config.vocab_size + 8 * config.intermediate_size))
        return max(1, torch.cuda.mem_get_info(weight.device)[0] // 2 // per_row)

    def empty_caches(self, rows: int, slots: int) -> list[torch.Tensor]:
        """Keys and values of every block, alternating: [rows, kv heads, slots, head dim] each."""
        weight = self.body.embed_tokens.weight
        shape = (rows, self.kv_heads, slots, self.head_dim)
        return [torch.zeros(shape, dtype=weight.dtype, device=weight.device)
                for _ in range(2 * len(self.lm.decoder_layers))]

    def _attend(self, layer, x: torch.Tensor, rotary, keys: torch.Tensor, values: torch.Tensor,
                at: int | torch.Tensor, mask: torch.Tensor, write: bool) -> torch.Tensor:
        """Self-attention of `x` [rows, T, hidden] placed at cache slots at..at+T, over every slot before them
        and the block itself where `mask` allows. `write`: into the cache; else on a copy that is dropped. `at` a
        tensor [1]: one token written there, attending over all slots (the mask covers the later ones)."""
        att, (rows, t, _) = layer.self_attn, x.shape
        q = att.q_proj(x).view(rows, t, self.heads, self.head_dim).transpose(1, 2)
        k = att.k_proj(x).view(rows, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = att.v_proj(x).view(rows, t, self.kv_heads, self.head_dim).transpose(1, 2)
        cos, sin = rotary
        q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        if isinstance(at, torch.Tensor):  # one step at a slot given as a tensor (StaticStep): over every slot
            keys.index_copy_(2, at, k)
            values.index_copy_(2, at, v)
            k, v = keys, values
        elif write:
            keys[:, :, at : at + t], values[:, :, at : at + t] = k, v
            k, v = keys[:, :, : at + t], values[:, :, : at + t]
        else:
            k, v = torch.cat([keys[:, :, :at], k], dim=2), torch.cat([values[:, :, :at], v], dim=2)
        if t == 1:  # one step: each key head's group of query heads as its queries (no keys and values repeated)
            out = F.scaled_dot_product_attention(q.reshape(rows, self.kv_heads, -1, self.head_dim), k, v,
                                                 attn_mask=mask, scale=att.scaling).view(rows, self.heads, 1, -1)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=att.scaling,
                                                 enable_gqa=self.heads != self.kv_heads)
        return att.o_proj(out.transpose(1, 2).reshape(rows, t, self.heads * self.head_dim))

    def forward(self, ids: torch.Tensor, positions: torch.Tensor, caches: list[torch.Tensor], at: int | torch.Tensor,
                mask: torch.Tensor, layers: Sequence[int], write: bool = True) -> tuple[torch.Tensor, dict]:
        """The final hidden state [rows, T, hidden] of `ids` at cache slots at..at+T, and the hidden states at
        `layers` (0: the embeddings, l: the output of block l-1). Stops after the deepest of `layers` when
        nothing is written to the cache (then the final state is that layer's)."""
        embed = self.body.embed_tokens
        h = _hooked(embed, ids, embed(ids))
        cos, sin = self.body.rotary_emb(h, positions)
        rotary, states = (cos.unsqueeze(1), sin.unsqueeze(1)), {0: h} if 0 in layers else {}
        last = len(self.lm.decoder_layers) if write or not layers else max(layers)
        layer: Any  # a Llama-family block (input_layernorm, mlp, post_attention_layernorm), as `supports` checked
        for i, layer in enumerate(self.lm.decoder_layers[:last]):
            block_in = h
            h = h + self._attend(layer, layer.input_layernorm(h), rotary, caches[2 * i], caches[2 * i + 1], at,
                                 mask, write)
            h = _hooked(layer, block_in, h + layer.mlp(layer.post_attention_layernorm(h)))
            if i + 1 in layers:
                states[i + 1] = h
        return (self.body.norm(h) if last == len(self.lm.decoder_layers) else h), states


class StaticStep:
    """A decode step whose shapes do not change from one token to the next: the slot written is a tensor and
    attention runs over every slot of the cache, the mask hiding those not written yet. On CUDA the step is
    captured once as a CUDA graph and replayed, so a step costs its kernels, not Python and launches; a new
    capture follows when finished rows leave the batch (the cache tensors change). Elsewhere it runs eagerly
    (the tests compare it with the plain step)."""

    def __init__(self, decoder: Decoder, layers: Sequence[int], slots: int, graphs: bool):
        self.decoder, self.layers, self.graphs = decoder, list(layers), graphs
        self.slots = torch.arange(slots, device=decoder.lm.device)
        self.captured_over: torch.Tensor | None = None
        self.graph: torch.cuda.CUDAGraph | None = None
        self.inputs: list[torch.Tensor] = []
        self.outputs: tuple[torch.Tensor, dict] | None = None

    def run(self, ids: torch.Tensor, positions: torch.Tensor, at: torch.Tensor, valid: torch.Tensor,
            caches: list[torch.Tensor]) -> tuple[torch.Tensor, dict]:
        mask = (valid & (self.slots <= at))[:, None, None]
        return self.decoder.forward(ids, positions, caches, at, mask, self.layers)

    def __call__(self, ids: torch.Tensor, positions: torch.Tensor, at: int, valid: torch.Tensor,
                 caches: list[torch.Tensor]) -> tuple[torch.Tensor, dict]:
        """The final and requested hidden states of `ids` [rows, 1] written at slot `at`; `valid` [rows, slots]."""
        at_slot = torch.tensor([at], device=ids.device)
        if not self.graphs:
            return self.run(ids, positions, at_slot, valid, caches)
        if self.captured_over is not caches[0]:
            self._capture([ids, positions, at_slot, valid], caches)
        for static, value in zip(self.inputs, (ids, positions, at_slot, valid)):
            static.copy_(value)
        assert self.graph is not None and self.outputs is not None
        self.graph.replay()
        return self.outputs

    def _capture(self, inputs: list[torch.Tensor], caches: list[torch.Tensor]) -> None:
        """Warm up on a side stream, then record one step (both write this step's keys and values, which the
        replay writes again, the same)."""
        self.inputs = [x.clone() for x in inputs]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        ids, positions, at, valid = self.inputs
        with torch.cuda.stream(side):
            self.run(ids, positions, at, valid, caches)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.outputs = self.run(ids, positions, at, valid, caches)
        self.captured_over = caches[0]


@dataclass
class PromptLayout:
    """Where a batch's prompts sit in the cache. The tokens that the prompts with the batch's most common opening
    (its hosts) all start with (a chat template's system prompt, say) sit once at slots [0, shared), computed
    once; then each row's own tokens right-aligned up to `width`, after `pad[row]` padding slots that nothing
    attends to. A guest, a prompt with another opening batched in with them (generation.prompt_batches), has
    all its tokens as its own and never attends to the shared slots. Rows come in order of own length."""

    ids: torch.Tensor  # [rows, width]: the shared tokens (hosts), the padding, each row's own tokens
    shared: int
    pad: torch.Tensor
    guest: torch.Tensor  # [rows] bool

    @staticmethod
    def sharing(prompts: Sequence[list[int]]) -> tuple[int, list[bool], list[int]]:
        """How many tokens the hosts share; which rows are guests: the rows without the opening (first OPENING
        tokens) that most rows have, when most do, otherwise none; and each row's own length."""
        openings = [tuple(p[:OPENING]) for p in prompts]
        top, count = Counter(openings).most_common(1)[0]
        guest = [o != top for o in openings] if 2 * count > len(prompts) else [False] * len(prompts)
        hosts = [p for p, g in zip(prompts, guest) if not g]
        shared, shortest = 0, min(len(p) for p in hosts)
        while shared < shortest - 1 and all(p[shared] == hosts[0][shared] for p in hosts):
            shared += 1
        return shared, guest, [len(p) - (0 if g else shared) for p, g in zip(prompts, guest)]

    @classmethod
    def order(cls, prompts: Sequence[list[int]]) -> list[int]:
        """The rows in the order `of` takes them: by own length, shortest first."""
        own = cls.sharing(prompts)[2]
        return sorted(range(len(prompts)), key=lambda r: own[r])

    @classmethod
    def of(cls, prompts: Sequence[list[int]], pad_id: int, device: torch.device) -> PromptLayout:
        shared, guest, own = cls.sharing(prompts)
        width = shared + max(own)
        ids = torch.full((len(prompts), width), pad_id, dtype=torch.long, device=device)
        for row, prompt in enumerate(prompts):
            if not guest[row]:
                ids[row, :shared] = torch.tensor(prompt[:shared], device=device)
            ids[row, width - own[row]:] = torch.tensor(prompt[len(prompt) - own[row]:], device=device)
        return cls(ids, shared, torch.tensor([width - shared - n for n in own], device=device),
                   torch.tensor(guest, dtype=torch.bool, device=device))

    @property
    def width(self) -> int:
        return self.ids.shape[1]

    @property
    def offset(self) -> torch.Tensor:
        """[rows]: slot minus position of each row's own tokens (and of what follows them)."""
        return self.pad + self.shared * self.guest

    def valid(self, slots: torch.Tensor) -> torch.Tensor:
        """[rows, slots]: the slots holding a row's tokens (never its padding, nor a guest's shared slots)."""
        return (((slots[None, :] < self.shared) & ~self.guest[:, None])
                | (slots[None, :] >= self.shared + self.pad[:, None]))

    def positions(self, slots: torch.Tensor) -> torch.Tensor:
        """[rows, slots]: each slot's position in its row's text."""
        own = slots[None, :] - self.offset[:, None]
        return torch.where(slots[None, :] < self.shared, slots[None, :], own).clamp_min(0)

    def prefill(self, decoder: Decoder, caches: list[torch.Tensor], valid: torch.Tensor) -> torch.Tensor:
        """Fill the cache with the prompts; the last hidden state of each [rows, hidden]. Rows must come in order
        of length (shortest first): each group of similar length runs only its own last slots, so a long prompt
        does not make every row pay for its padding."""
        width, shared, rows = self.width, self.shared, len(self.pad)
        slots = torch.arange(width, device=self.ids.device)
        if shared:  # the shared tokens run once, in row 0, and are copied to the other rows (guests ignore them)
            host = int((~self.guest).nonzero()[0])
            causal = (slots[:shared, None] >= slots[None, :shared])[None, None]
            decoder.forward(self.ids[host : host + 1, :shared], slots[None, :shared], [c[:1] for c in caches], 0,
                            causal, [])
            for cache in caches:
                cache[1:, :, :shared] = cache[:1, :, :shared]
        positions, last = self.positions(slots), []
        for lo, hi in self.groups():
            start = int(self.shared + self.pad[hi - 1])  # the group's longest prompt starts here
            own, ok = slots[start:], valid[lo:hi, :width]
            mask = (own[:, None] >= slots[None, :])[None] & (ok[:, None, :] | ~ok[:, start:, None])
            hidden, _ = decoder.forward(self.ids[lo:hi, start:], positions[lo:hi, start:], [c[lo:hi] for c in caches],
                                        start, mask[:, None], [])
            last.append(hidden[:, -1])
        return torch.cat(last).reshape(rows, -1)

    def groups(self) -> list[tuple[int, int]]:
        """Row ranges [lo, hi) of similar length: the longest own part (after the shared tokens) at most
        GROUP_SPREAD times the shortest plus GROUP_SLACK tokens."""
        own = (self.width - self.shared - self.pad).tolist()
        if own != sorted(own):
            raise ValueError("prefill needs the prompts in order of length, shortest first")
        bounds = [0]
        for row in range(1, len(own)):
            if own[row] > GROUP_SPREAD * own[bounds[-1]] + GROUP_SLACK:
                bounds.append(row)
        return list(zip(bounds, bounds[1:] + [len(own)]))


def _sample_means(decoder: Decoder, layout: PromptLayout, valid: torch.Tensor, caches: list[torch.Tensor],
                  samples: Sequence[list[int] | None], layers: list[int]) -> np.ndarray:
    """Mean states at `layers` of each row's sample response, run after its prompt on the prompt's cache
    (nothing is written to it); NaN for rows without one. Rows go in groups of similar sample length, since
    prompts were batched by their own length."""
    lm, rows, width, offset = decoder.lm, len(layout.pad), layout.width, layout.offset
    out = np.full((rows, len(layers), lm.hidden_size), np.nan, dtype=np.float32)
    lengths = [len(s) if s else 0 for s in samples] + [0] * (rows - len(samples))
    with_sample = [row for row in range(rows) if lengths[row]]
    if not layers:
        return out
    for group in length_batches([lengths[r] for r in with_sample], rows, SAMPLE_TOKENS):
        group = [with_sample[i] for i in group]
        m, pick = max(lengths[r] for r in group), torch.tensor(group, device=lm.device)
        ids = torch.full((len(group), m), lm.tokenizer.pad_token_id, dtype=torch.long, device=lm.device)
        for i, row in enumerate(group):
            ids[i, : lengths[row]] = torch.tensor(samples[row], device=lm.device)
        block = torch.arange(m, device=lm.device)
        mask = torch.cat([valid[pick, None, :width].expand(len(group), m, width),
                          (block[:, None] >= block[None, :]).expand(len(group), m, m)], dim=-1)
        _, states = decoder.forward(ids, (width - offset[pick])[:, None] + block, [c[pick] for c in caches], width,
                                    mask[:, None], layers, write=False)
        for i, row in enumerate(group):
            for col, layer in enumerate(layers):
                out[row, col] = states[layer][i, : lengths[row]].float().mean(0).cpu().numpy()
    return out


def _next_token(decoder: Decoder, last: torch.Tensor, seen: torch.Tensor, spared: list[int], penalty: float,
                temperature: float, generator: torch.Generator | None) -> torch.Tensor:
    """Each row's next token from its last hidden state: the repetition penalty (as transformers applies it) on
    the tokens in `seen` [rows, k] except `spared` ones, then greedy, or sampled at `temperature`."""
    logits = decoder.head(last).float()
    if penalty != 1.0:
        kept = logits[:, spared].clone()
        values = logits.gather(1, seen)
        logits.scatter_(1, seen, torch.where(values > 0, values / penalty, values * penalty))
        logits[:, spared] = kept
    if not temperature:
        return logits.argmax(-1)
    return torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=generator)[:, 0]


def until_stop(ids: list[int], stops: Collection[int]) -> list[int]:
    """A generated answer up to (not including) its first end token; an immediately ended one keeps that token."""
    cut = next((i for i, t in enumerate(ids) if t in stops), len(ids))
    return ids[:cut] or ids[:1]


def decode(decoder: Decoder, prompts: Sequence[list[int]], max_new_tokens: int, stops: Sequence[int],
           spared: Sequence[int], repetition_penalty: float = 1.0, temperature: float = 0.0, seed: int = 0,
           layers: Sequence[int] = (), samples: Sequence[list[int] | None] = (), steps: str | None = None) -> Decoded:
    """Answer a batch of prompts (left padded), greedy or sampled, each row stopping at its own end token.
    The rows run in PromptLayout's order (own length, see PromptLayout.prefill); results come back in the given
    order.
    With `layers`, also the mean states of each answer and of each given sample response (see _decode).
    `steps`: how decode steps run: `graphs` (CUDA graphs of a StaticStep; the default on CUDA), `static` (a
    StaticStep run eagerly) or `eager` (over the slots written so far; the default elsewhere)."""
    order = PromptLayout.order(prompts)
    samples = [*samples, *[None] * (len(prompts) - len(samples))] if samples else ()
    steps = steps or ("graphs" if decoder.lm.device.type == "cuda" else "eager")
    fit = decoder.rows_that_fit(max(len(p) for p in prompts) + max_new_tokens + 1)
    chunks = [order[i : i + fit] for i in range(0, len(order), fit)]
    chunks = [[chunk[i] for i in PromptLayout.order([prompts[r] for r in chunk])] for chunk in chunks]  # its own
    parts = [_decode(decoder, [prompts[r] for r in chunk], max_new_tokens, stops, spared, repetition_penalty,
                     temperature, seed, layers, [samples[r] for r in chunk] if samples else (), steps)
             for chunk in chunks]
    back = np.argsort([r for chunk in chunks for r in chunk])
    answers = [a for part in parts for a in part.answers]
    means, sample_means = (np.concatenate([part.means for part in parts]),
                           np.concatenate([part.sample_means for part in parts]))
    return Decoded([answers[r] for r in back], means[back], sample_means[back])


@torch.inference_mode()
def _decode(decoder: Decoder, prompts: Sequence[list[int]], max_new_tokens: int, stops: Sequence[int],
            spared: Sequence[int], repetition_penalty: float = 1.0, temperature: float = 0.0, seed: int = 0,
            layers: Sequence[int] = (), samples: Sequence[list[int] | None] = (), steps: str = "eager") -> Decoded:
    """Decode prompts given in PromptLayout's order.

    With `layers`, each answer's hidden states there are averaged over its tokens, read off the decoding
    steps that feed them (one more step reaches the last token of an answer cut at `max_new_tokens`), and
    each `samples[i]` (a response to prompt i) is run on the prompt's cache, so the prompt runs once.
    `spared` tokens (the chat template's own) are never penalised, so the end of turn is not pushed down.
    """
    lm, layers, rows, spared = decoder.lm, list(layers), len(prompts), list(spared)
    layout = PromptLayout.of(prompts, lm.tokenizer.pad_token_id, lm.device)
    width, offset = layout.width, layout.offset
    slots = torch.arange(width + max_new_tokens + 1, device=lm.device)
    valid = layout.valid(slots)
    caches = decoder.empty_caches(rows, len(slots))
    static = None if steps == "eager" else StaticStep(decoder, layers, len(slots), graphs=steps == "graphs")
    last = layout.prefill(decoder, caches, valid)
    sample_means = _sample_means(decoder, layout, valid, caches, samples, layers)

    seen = layout.ids.masked_fill(~valid[:, :width], spared[0])  # what the penalty counts: prompt and answer
    sums = torch.zeros((rows, len(layers), lm.hidden_size), device=lm.device)
    fed = torch.zeros(rows, dtype=torch.long, device=lm.device)
    generator = torch.Generator(device=lm.device).manual_seed(seed) if temperature else None
    stop = torch.tensor(sorted(set(stops)), device=lm.device)
    index = torch.arange(rows, device=lm.device)  # the rows in the batch (finished ones leave it now and then)
    writing = torch.ones(rows, dtype=torch.bool, device=lm.device)
    answers: list[list[int]] = [[] for _ in range(rows)]
    for produced in range(1, max_new_tokens + 1):
        token = _next_token(decoder, last, seen, spared, repetition_penalty, temperature, generator)
        for row, value, live in zip(index.tolist(), token.tolist(), writing.tolist()):
            if live:
                answers[row].append(value)
        seen = torch.cat([seen, token[:, None]], 1)
        writing &= ~torch.isin(token, stop)
        if not writing.any() or (produced == max_new_tokens and not layers):
            break
        if writing.sum() <= COMPACT_AT * len(writing):
            keep = writing.nonzero()[:, 0]
            index, token, seen, writing = index[keep], token[keep], seen[keep], writing[keep]
            caches[:] = [c[keep] for c in caches]
        at = width + produced - 1  # feed each row its last token: its state is that answer token's
        if static is not None:
            hidden, states = static(token[:, None], (at - offset[index])[:, None], at, valid[index], caches)
        else:
            hidden, states = decoder.forward(token[:, None], (at - offset[index])[:, None], caches, at,
                                             valid[index, None, None, : at + 1], layers)
        last = hidden[:, -1]
        live = index[writing]
        for col, layer in enumerate(layers):
            sums[live, col] += states[layer][writing, 0].float()
        fed[live] += 1
    stop_set = set(stops)
    answers = [until_stop(a, stop_set) for a in answers]
    means = np.full((rows, len(layers), lm.hidden_size), np.nan, dtype=np.float32)
    for row, answer in enumerate(answers):
        if layers and fed[row] >= len(answer):
            means[row] = (sums[row] / fed[row]).cpu().numpy() if fed[row] else np.nan
    return Decoded(answers, means, sample_means)
