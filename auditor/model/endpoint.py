"""An OpenAI-compatible chat-completions endpoint over stdlib HTTP, with retries and exponential backoff."""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from ..errors import AuditError

RETRIED_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class EndpointError(AuditError):
    """The endpoint failed (after retries) or answered something that is not a chat completion."""


@dataclass(frozen=True)
class ChatEndpoint:
    """POST {url}/chat/completions. The API key is read from `api_key_env` at request time, never stored."""

    url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = 120.0
    retries: int = 4
    backoff: float = 1.0  # seconds before the first retry; doubled for each further one

    @property
    def completions_url(self) -> str:
        return self.url.rstrip("/") + "/chat/completions"

    def complete(self, messages: list[dict[str, str]], **params) -> dict:
        """The decoded reply to one request; timeouts, connection errors, 429 and 5xx are retried."""
        body = json.dumps({"model": self.model, "messages": messages, **params}).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            request = urllib.request.Request(self.completions_url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                    return self._chat_completion(reply.read())
            except urllib.error.HTTPError as exc:
                problem = f"HTTP {exc.code}: {_short(exc.read().decode('utf-8', 'replace') or exc.reason)}"
                if exc.code not in RETRIED_STATUS:
                    break
            except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets
                problem = _short(str(getattr(exc, "reason", exc)))
        raise EndpointError(f"POST {self.completions_url} failed: {problem}")

    def _chat_completion(self, payload: bytes) -> dict:
        """The decoded reply, once it is known to hold a first choice with a message."""
        try:
            reply = json.loads(payload)
            if not isinstance(reply["choices"][0]["message"], dict):
                raise TypeError
        except (ValueError, KeyError, IndexError, TypeError):
            raise EndpointError(f"POST {self.completions_url}: the reply is not a chat completion "
                                f"({_short(payload.decode('utf-8', 'replace'), 80)})") from None
        return reply


def _short(text: str, limit: int = 200) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def reply_text(reply: dict) -> str:
    """The first choice's message text."""
    return reply["choices"][0]["message"].get("content") or ""
