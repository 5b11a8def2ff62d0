from auditor.model.chat import clip_messages, encode_prompt, encode_response, fit


def test_fit_leaves_short_pairs_alone():
    assert fit([1, 2], [3], 10) == ([1, 2], [3], False)


def test_fit_keeps_prompt_end_and_response_start():
    prompt, response, cut = fit(list(range(100)), list(range(100, 200)), 64)
    assert cut and len(prompt) + len(response) == 64
    assert response == list(range(100, 132)) and prompt == list(range(68, 100))


def test_fit_gives_short_prompts_their_room():
    prompt, response, cut = fit([1, 2, 3], list(range(100)), 20)
    assert prompt == [1, 2, 3] and len(response) == 17 and cut


def test_prompt_ends_with_assistant_header(tiny_lm):
    tok = tiny_lm.tokenizer
    ids = encode_prompt(tok, [{"role": "user", "content": "hello"}])
    assert tok.decode(ids).endswith("<|im_start|>assistant\n")
    assert tok.decode(encode_response(tok, "fine thanks")) == "fine thanks"


def test_clip_messages_keeps_system_and_latest_turns():
    messages = [{"role": "system", "content": "s"}] + [
        {"role": "user" if i % 2 == 0 else "assistant", "content": str(i)} for i in range(100_000)]
    clipped, dropped = clip_messages(messages, 64)
    assert dropped and len(clipped) == 16
    assert clipped[0]["role"] == "system" and clipped[-1]["content"] == "99999"
    assert clip_messages(messages[:5], 64) == (messages[:5], False)
