"""End-to-end: the real Claude Code CLI (`claude -p`) -> gateway -> OCI emulator.

Each test scripts the emulator for one agent loop, runs Claude Code non-interactively in a temp
directory and checks both ends: what Claude Code did and printed, and what reached "OCI".
Families cover the upstream shapes: tool calls with upstream ids (grok, openai/gpt-oss, llama)
and without (gemini, cohere: the gateway mints the ids), GENERIC and COHERE formats.

Scenarios are matched on a per-test token in the prompt; the default answer is harmless, so an
unexpected extra request from Claude Code shows up as a wrong result rather than a hang.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from app.catalog import ModelSpec
from emulator import FakeOCI, RecordedRequest, Scenario, tool_call
from tests.e2e.conftest import ClaudeRun, ClaudeRunner
from tests.harness import BOB, TEST_MODELS

DEFAULT_TEXT = "(default emulator answer)"


@dataclass(frozen=True)
class Family:
    model: str  # gateway model name passed to --model
    upstream_ids: bool  # the upstream stream carries tool call ids
    cohere: bool = False
    auth: tuple[tuple[str, str], ...] | None = None  # env for credentials (default: ALICE key)

    @property
    def reasoning(self) -> bool:
        """The model takes ``reasoningEffort`` (its profile's ``reasoning_effort``; Grok does
        not, oci-real-world.md §1)."""
        return ModelSpec.model_validate(TEST_MODELS[self.gateway_model]).profile.reasoning_effort

    @property
    def gateway_model(self) -> str:
        return "grok" if self.model.startswith("claude-") else self.model  # aliases: claude-*


FAMILIES = {
    "grok": Family("grok", upstream_ids=True),
    "gemini": Family("gemini", upstream_ids=False),
    "gpt-oss": Family("gpt-oss", upstream_ids=True),
    "llama": Family("llama", upstream_ids=True),
    "cohere": Family("cohere", upstream_ids=False, cohere=True),
    # a Claude 4.5-era name (thinking enabled + budget, no effort, no role:system message) via
    # the claude-* alias, with a Bearer token for a hashed key instead of x-api-key
    "claude-alias": Family(
        "claude-sonnet-4-5-20250929", upstream_ids=True, auth=(("ANTHROPIC_AUTH_TOKEN", BOB),)
    ),
}
REASONING_FAMILIES = ["grok", "gemini", "gpt-oss", "claude-alias"]


def _env(family: Family) -> dict[str, str] | None:
    return dict(family.auth) if family.auth else None


def _chat(record: RecordedRequest) -> dict[str, Any]:
    return record.chat_request


def _summary(fake: FakeOCI) -> str:
    lines = []
    for r in fake.requests:
        chat = _chat(r)
        roles = [m.get("role") for m in chat.get("messages", [])]
        lines.append(
            f"{r.status} {r.model_id} effort={chat.get('reasoningEffort')} "
            f"roles={roles} message={str(chat.get('message', ''))[-80:]!r}"
        )
    return "\n".join(lines) or "(no OCI request)"


def _script(fake: FakeOCI, token: str, family: Family, first: Scenario, final: Scenario) -> None:
    """Turn 1 answers ``first`` (tool calls), the tool-result turn answers ``final``."""
    fake.set_default(Scenario(text=DEFAULT_TEXT))
    first.match = token
    # GENERIC: the last USER message of the tool-result turn is still the prompt. COHERE sends
    # message "" with toolResults then, so that turn takes the next unmatched scenario.
    final.match = None if family.cohere else token
    fake.push(first, final)


def _ids(family: Family, *names: str) -> list[str | None]:
    return [f"call_e2e_{n}" if family.upstream_ids else None for n in names]


def _check_ok(run: ClaudeRun, fake: FakeOCI, text: str, turns: int = 2) -> dict[str, Any]:
    why = f"{run.describe()}\n--- OCI requests ---\n{_summary(fake)}"
    assert run.returncode == 0, why
    result = run.result
    assert result.get("is_error") is False, why
    assert result.get("result") == text, why
    assert len(fake.requests) == turns, why
    assert all(r.status == 200 for r in fake.requests), why
    return result


def _tool_messages(chat: dict[str, Any]) -> dict[str, str]:
    """GENERIC: toolCallId -> text of each TOOL message."""
    out = {}
    for m in chat["messages"]:
        if m["role"] == "TOOL":
            out[m["toolCallId"]] = " ".join(p.get("text", "") for p in m.get("content", []))
    return out


def _assistant_calls(chat: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for m in chat["messages"] if m["role"] == "ASSISTANT" for c in m.get("toolCalls", [])]


def _check_upstream_ids(family: Family, seen: list[str], expected: list[str | None]) -> None:
    assert len(set(seen)) == len(seen), seen
    if family.upstream_ids:
        assert seen == expected  # the gateway passes the upstream ids through
    else:
        assert all(i.startswith("toolu_") for i in seen), seen  # minted by the gateway


# --- (1) one tool call that changes the workspace, then a final answer ---------------------


@pytest.mark.parametrize("name", list(FAMILIES))
def test_bash_tool_creates_file(run_claude: ClaudeRunner, fake: FakeOCI, name: str) -> None:
    family = FAMILIES[name]
    token = f"E2E-CREATE-{name}"
    [call_id] = _ids(family, "bash")
    final_text = f"Created created.txt for you ({name})."
    _script(
        fake,
        token,
        family,
        Scenario(
            tool_calls=[
                tool_call(
                    "Bash",
                    {"command": "echo hello > created.txt", "description": "create file"},
                    id=call_id,
                )
            ]
        ),
        Scenario(text=final_text),
    )

    run = run_claude(
        f"{token}: create a file called created.txt", model=family.model, auth=_env(family)
    )

    _check_ok(run, fake, final_text)
    created = run.cwd / "created.txt"
    assert created.is_file() and created.read_text() == "hello\n"
    first, second = (_chat(r) for r in fake.requests)
    expected_model = TEST_MODELS[family.gateway_model]["model_id"]
    assert all(r.model_id == expected_model for r in fake.requests)
    assert first["isStream"] is True
    # Claude Code's own tools arrive as OCI function tools
    assert {"Bash", "Read"} <= {t["name"] for t in first["tools"]}
    # reasoningEffort only for models whose profile takes it (adaptive/enabled thinking)
    assert ("reasoningEffort" in first) == family.reasoning
    if family.cohere:
        [result] = second["toolResults"]
        assert result["call"]["name"] == "Bash"
        assert result["call"]["parameters"]["command"] == "echo hello > created.txt"
        assert token in second["chatHistory"][0]["message"]
        return
    [call] = _assistant_calls(second)
    assert call["name"] == "Bash"
    assert json.loads(call["arguments"])["command"] == "echo hello > created.txt"
    tools = _tool_messages(second)
    assert list(tools) == [call["id"]]
    _check_upstream_ids(family, [call["id"]], [call_id])


# --- (2) two tools in parallel in one turn --------------------------------------------------


@pytest.mark.parametrize("name", ["grok", "gemini", "gpt-oss", "llama", "cohere"])
def test_parallel_tool_calls(run_claude: ClaudeRunner, fake: FakeOCI, name: str) -> None:
    family = FAMILIES[name]
    token = f"E2E-PARALLEL-{name}"
    bash_id, read_id = _ids(family, "bash", "read")
    final_text = "Both tools ran fine."
    notes = "read-me-content-42"

    (run_claude.cwd / "notes.txt").write_text(notes + "\n")
    calls = [
        tool_call("Bash", {"command": "echo bash-out-17", "description": "print"}, id=bash_id),
        tool_call("Read", {"file_path": str(run_claude.cwd / "notes.txt")}, id=read_id),
    ]
    _script(fake, token, family, Scenario(tool_calls=calls), Scenario(text=final_text))

    run = run_claude(f"{token}: run two tools at once", model=family.model, stream_json=True)

    _check_ok(run, fake, final_text)
    # Claude Code saw two tool_use blocks in one assistant turn and answered both
    uses = [b for b in run.blocks("assistant") if b.get("type") == "tool_use"]
    assert [u["name"] for u in uses] == ["Bash", "Read"]
    results = {b["tool_use_id"]: b for b in run.blocks("user") if b.get("type") == "tool_result"}
    assert set(results) == {u["id"] for u in uses}
    assert not any(r.get("is_error") for r in results.values()), results
    second = _chat(fake.requests[1])
    if family.cohere:
        got = {
            r["call"]["name"]: " ".join(o.get("output", "") for o in r["outputs"])
            for r in second["toolResults"]
        }
        assert set(got) == {"Bash", "Read"}
        assert "bash-out-17" in got["Bash"] and notes in got["Read"]
        return
    sent = _assistant_calls(second)
    assert [c["name"] for c in sent] == ["Bash", "Read"]
    ids = [c["id"] for c in sent]
    assert ids == [u["id"] for u in uses]  # the ids Claude Code saw are the ones sent back
    _check_upstream_ids(family, ids, [bash_id, read_id])
    tools = _tool_messages(second)
    assert set(tools) == set(ids) and len(tools) == 2  # two TOOL messages, one per call
    assert "bash-out-17" in tools[ids[0]]
    assert notes in tools[ids[1]]


# --- (3) the model thinks before acting and before answering -------------------------------


@pytest.mark.parametrize("name", REASONING_FAMILIES)
def test_thinking_then_answer(run_claude: ClaudeRunner, fake: FakeOCI, name: str) -> None:
    family = FAMILIES[name]
    token = f"E2E-THINK-{name}"
    [call_id] = _ids(family, "bash")
    thought_1 = "The user wants the date; I will ask the shell first."
    thought_2 = "The shell answered, so I can reply now."
    final_text = "It is a fine day."
    _script(
        fake,
        token,
        family,
        Scenario(
            reasoning=thought_1,
            tool_calls=[
                tool_call("Bash", {"command": "echo 2030-01-01", "description": "date"}, id=call_id)
            ],
        ),
        Scenario(reasoning=thought_2, text=final_text),
    )

    run = run_claude(
        f"{token}: think, then tell me the date",
        model=family.model,
        stream_json=True,
        auth=_env(family),
    )

    _check_ok(run, fake, final_text)
    # the reasoning reached Claude Code as thinking blocks, before the tool call / the text
    kinds = [b.get("type") for b in run.blocks("assistant")]
    assert kinds == ["thinking", "tool_use", "thinking", "text"], kinds
    thoughts = [b for b in run.blocks("assistant") if b["type"] == "thinking"]
    assert [b["thinking"] for b in thoughts] == [thought_1, thought_2]
    assert all(b.get("signature") for b in thoughts)  # Claude Code replays them in history
    first, second = (_chat(r) for r in fake.requests)
    # Claude Code asks for thinking (adaptive + effort high, or enabled with a 31999 budget):
    # both map to HIGH for a model that takes the knob, on every turn (Grok reasons without it)
    effort = "HIGH" if family.reasoning else None
    assert first.get("reasoningEffort") == effort
    assert second.get("reasoningEffort") == effort
    # the replayed thinking block is accepted and not forwarded to OCI
    assert thought_1 not in json.dumps(second)
    [call] = _assistant_calls(second)
    tools = _tool_messages(second)
    assert list(tools) == [call["id"]] and "2030-01-01" in tools[call["id"]]
    _check_upstream_ids(family, [call["id"]], [call_id])


# --- (4) the upstream stream breaks: Claude Code's non-streaming fallback -------------------


def test_broken_stream_falls_back_to_non_streaming(run_claude: ClaudeRunner, fake: FakeOCI) -> None:
    # the gateway must report the cut as `event: error` (no retry after bytes were sent);
    # Claude Code then repeats the request once without `stream` (reference §8.6)
    token = "E2E-FALLBACK"
    fake.set_default(Scenario(text=DEFAULT_TEXT))
    fake.push(
        Scenario(match=token, text="one two three four five six", drop_after=2),
        Scenario(match=token, text="Recovered answer."),
    )

    run = run_claude(f"{token}: say something", model="grok")

    _check_ok(run, fake, "Recovered answer.")
    first, second = fake.requests
    assert first.stream and first.dropped_by_server
    assert "isStream" not in second.chat_request
