"""Drive the host with the official openai SDK: list models, stream a chat (with usage),
and see an upstream 429 surface as the SDK's RateLimitError. Prints one line per check."""

import os
import sys

import openai

client = openai.OpenAI(base_url=os.environ["PIPE_URL"], api_key="unused-locally", max_retries=0)

ids = [m.id for m in client.models.list()]
assert "fake/echo" in ids, ids
print("models ok")

text = []
usage = None
stream = client.chat.completions.create(
    model="fake/echo",
    messages=[{"role": "user", "content": "hello from the sdk"}],
    stream=True,
    stream_options={"include_usage": True},
)
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        text.append(chunk.choices[0].delta.content)
    if chunk.usage:
        usage = chunk.usage
answer = "".join(text)
print(f"stream ok: {answer}")
assert answer == "echo: hello from the sdk", answer
assert usage is not None and usage.total_tokens > 0, usage
assert usage.prompt_tokens_details.cached_tokens == 2, usage
print("usage ok")

try:
    client.chat.completions.create(model="fake/status-429", messages=[{"role": "user", "content": "x"}])
    sys.exit("expected a rate limit error")
except openai.RateLimitError as e:
    assert e.status_code == 429
    assert "Rate limited" in str(e), str(e)
    print(f"error ok: {e.status_code}")
