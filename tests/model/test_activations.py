import numpy as np
import torch

from auditor.model.activations import hidden_states, length_batches, record_layers, response_means


def _pairs(lm):
    tok = lm.tokenizer
    texts = [("What should I cook?", "Try pasta with garlic."), ("Hi", "Hello there, how can I help you today?"),
             ("Tell me about the treaty of Velmora please", "It was signed in 1987."), ("x", "y")]
    return [(tok(q)["input_ids"], tok(a)["input_ids"]) for q, a in texts]


def test_hooks_capture_what_output_hidden_states_reports(tiny_lm):
    ids = torch.tensor([_pairs(tiny_lm)[0][0]])
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        reference = tiny_lm.model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        got = hidden_states(tiny_lm, ids, mask, [0, 1])
    for layer in (0, 1):  # the last entry of hidden_states is after the final norm, so compare below it
        torch.testing.assert_close(got[layer], reference[layer])


def test_forward_stops_after_the_deepest_needed_layer(tiny_lm):
    calls = []
    handle = tiny_lm.decoder_layers[1].register_forward_hook(lambda *a: calls.append(1))
    try:
        ids = torch.tensor([[1, 2, 3]])
        hidden_states(tiny_lm, ids, torch.ones_like(ids), [1])
    finally:
        handle.remove()
    assert calls == []


def test_hooks_are_removed(tiny_lm):
    before = [len(layer._forward_hooks) for layer in tiny_lm.decoder_layers]
    with record_layers(tiny_lm, [1, 2]):
        assert [len(layer._forward_hooks) for layer in tiny_lm.decoder_layers] == [n + 1 for n in before]
    assert [len(layer._forward_hooks) for layer in tiny_lm.decoder_layers] == before


def test_response_means_do_not_depend_on_batching(tiny_lm):
    pairs = _pairs(tiny_lm)
    one = response_means(tiny_lm, pairs, [1, 2], batch_size=1)
    many = response_means(tiny_lm, pairs, [1, 2], batch_size=4)
    np.testing.assert_allclose(one, many, atol=1e-5)


def test_response_means_average_exactly_the_response_tokens(tiny_lm):
    prompt, response = _pairs(tiny_lm)[0]
    ids = torch.tensor([prompt + response])
    with torch.inference_mode():
        states = hidden_states(tiny_lm, ids, torch.ones_like(ids), [2])[2][0]
    expected = states[len(prompt):].mean(0).numpy()
    np.testing.assert_allclose(response_means(tiny_lm, [(prompt, response)], [2])[0, 0], expected, atol=1e-5)


def test_length_batches_group_similar_lengths():
    assert length_batches([5, 1, 9, 2], 2) == [[1, 3], [0, 2]]
