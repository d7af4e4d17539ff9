"""A client-side tool loop with the official openai SDK, as any OpenAI client (or Open WebUI's
native tool calling) runs it: the model's call streams back as tool_calls, the client runs the
tool and sends a `tool` message, the model answers with the result. Streamed and non-streamed.
Prints one line per check."""

import json
import os

import openai

client = openai.OpenAI(base_url=os.environ["PIPE_URL"], api_key="unused-locally", max_retries=0)

tools = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


def get_weather(city):
    return f"Sunny and 21C in {city}"


for model in ("fake/tool-call", "fake/tool-call-late"):
    messages = [{"role": "user", "content": "What's the weather?"}]

    # Round 1, streamed: gather the tool call from the deltas, as the SDK docs show.
    calls = {}
    finish = None
    stream = client.chat.completions.create(
        model=model, messages=messages, tools=tools, stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        for tc in choice.delta.tool_calls or []:
            slot = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
            if tc.id:
                slot["id"] = tc.id
            if tc.function and tc.function.name:
                slot["name"] = tc.function.name
            if tc.function and tc.function.arguments:
                slot["arguments"] += tc.function.arguments
        if choice.finish_reason:
            finish = choice.finish_reason
    assert finish == "tool_calls", finish
    assert len(calls) == 1, calls
    call = calls[0]
    assert call["id"] and call["name"] == "get_weather", call
    args = json.loads(call["arguments"])
    assert args == {"city": "Paris"}, args
    print(f"{model} call ok: {call['name']}({call['arguments']})")

    # The client runs the tool and continues.
    messages.append({
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": call["id"], "type": "function",
                        "function": {"name": call["name"], "arguments": call["arguments"]}}],
    })
    messages.append({"role": "tool", "tool_call_id": call["id"], "content": get_weather(**args)})

    # Round 2, non-streamed: the answer uses the tool's output.
    done = client.chat.completions.create(model=model, messages=messages, tools=tools)
    answer = done.choices[0].message.content
    assert done.choices[0].finish_reason == "stop", done
    assert answer == "tool results: Sunny and 21C in Paris", answer
    print(f"{model} answer ok: {answer}")

# Non-streamed round 1: the SDK parses the tool call from the message.
first = client.chat.completions.create(
    model="fake/tool-call", messages=[{"role": "user", "content": "weather?"}], tools=tools
)
assert first.choices[0].finish_reason == "tool_calls", first
tc = first.choices[0].message.tool_calls[0]
assert tc.function.name == "get_weather" and json.loads(tc.function.arguments) == {"city": "Paris"}
print("non-streamed call ok")
