"""A real OpenAI-compatible chat-completions server on 127.0.0.1 for tests: canned replies, recorded requests."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Reply = Callable[[dict], "tuple[int, dict | str]"]  # request body -> (status, JSON reply or raw text)


def completion(content: str, top: list[tuple[str, float]] | None = None) -> dict:
    """A chat completion; with `top`, the first token's top logprobs as (token, logprob)."""
    choice: dict = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
    if top is not None:
        choice["logprobs"] = {"content": [{"token": top[0][0], "logprob": top[0][1],
                                           "top_logprobs": [{"token": t, "logprob": lp} for t, lp in top]}]}
    return {"id": "chatcmpl-test", "object": "chat.completion", "model": "test", "choices": [choice]}


@dataclass
class FakeLLM:
    """What the server was asked, and how many requests it served at once at most."""

    reply: Reply
    url: str = ""
    requests: list[dict] = field(default_factory=list)  # {"path", "headers", "body"}
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def prompts(self) -> list[str]:
        return [r["body"]["messages"][-1]["content"] for r in self.requests]


@contextmanager
def serve(reply: Reply) -> Iterator[FakeLLM]:
    """Run the server in a thread for the duration of the block; `url` ends in /v1."""
    fake = FakeLLM(reply)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with fake.lock:
                fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                fake.in_flight += 1
                fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
            try:
                status, payload = fake.reply(body)
            finally:
                with fake.lock:
                    fake.in_flight -= 1
            data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
