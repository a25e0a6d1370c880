"""A scripted LLM server on loopback: the model's turns are fixed, the wire format is real.

One server speaks the four APIs the clients use: Anthropic Messages (SSE), OpenAI Responses
(SSE), OpenAI chat completions (SSE or not) and Gemini generateContent /
streamGenerateContent. The script is the same for every client: first ask to write a file,
then to run a shell command, then finish. Which turn comes next is read from the request
itself (how many tool results it carries), so side requests a client makes (titles, token
counts, routing) get a plain answer and do not move the script. Every request is recorded.
"""

from __future__ import annotations

import json
import shlex
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Script:
    path: str  # absolute path of the file the model writes
    content: str
    command: str  # the shell command the model runs
    done: str = "All done."
    edit: str = ""  # for a client without tools (aider): the reply that edits the file


@dataclass
class Server:
    script: Script
    requests: list[dict[str, Any]] = field(default_factory=list)
    httpd: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self.httpd is not None
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        server = self

        class Handler(_Handler):
            owner = server

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()

    def log(self) -> str:
        return "\n".join(f"{r['method']} {r['path']} -> {r.get('answer', '')}"
                         for r in self.requests)


def _tool_names(tools: list[Any]) -> list[str]:
    names: list[str] = []
    for t in tools or []:
        if not isinstance(t, dict):
            continue
        if "functionDeclarations" in t:  # gemini
            names += [d.get("name", "") for d in t["functionDeclarations"]]
        elif isinstance(t.get("function"), dict):  # chat completions
            names.append(t["function"].get("name", ""))
        else:  # anthropic, responses
            names.append(t.get("name", ""))
    return names


def _pick(names: list[str], *choices: str) -> str | None:
    return next((c for c in choices if c in names), None)


def _plain_reply(sc: Script, msgs: list[Any], names: list[str]) -> str:
    """Without tools (aider), the first answer is the edit; a commit-message request gets one."""
    text = json.dumps(msgs).lower()
    if names or not sc.edit or "commit message" in text:
        return "Add the file" if "commit message" in text else sc.done
    return sc.edit


class _Handler(BaseHTTPRequestHandler):
    owner: Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # --- plumbing
    def _body(self) -> dict[str, Any]:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            out = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return out if isinstance(out, dict) else {}

    def _send(self, status: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _sse(self, events: list[tuple[str | None, Any]]) -> None:
        chunks = []
        for name, obj in events:
            head = f"event: {name}\n" if name else ""
            body = obj if isinstance(obj, str) else json.dumps(obj)
            chunks.append(f"{head}data: {body}\n\n".encode())
        data = b"".join(chunks)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.owner.requests.append({"method": "GET", "path": self.path})
        if self.path.rstrip("/").endswith("/models"):
            self._send(200, {"object": "list", "data": [
                {"id": "test-model", "object": "model", "created": 0, "owned_by": "test"}]})
        else:
            self._send(404, {"error": {"message": "not here", "type": "not_found"}})

    def do_POST(self) -> None:
        body = self._body()
        rec: dict[str, Any] = {"method": "POST", "path": self.path, "body": body}
        self.owner.requests.append(rec)
        path = self.path.split("?")[0]
        if path.endswith("/messages/count_tokens"):
            self._send(200, {"input_tokens": 10})
        elif path.endswith("/messages"):
            self._anthropic(body, rec)
        elif path.endswith("/responses"):
            self._responses(body, rec)
        elif path.endswith("/chat/completions"):
            self._chat(body, rec)
        elif ":streamGenerateContent" in path or ":generateContent" in path:
            self._gemini(body, rec, stream=":streamGenerateContent" in path)
        elif ":countTokens" in path:
            self._send(200, {"totalTokens": 10})
        else:
            rec["answer"] = "404"
            self._send(404, {"error": {"message": f"no such endpoint {path}"}})

    # --- the script: 0 tool results so far -> write; 1 -> shell; else done
    def _step(self, results: int, names: list[str], write: tuple[str, ...],
              shell: tuple[str, ...]) -> tuple[str, str | None]:
        w, s = _pick(names, *write), _pick(names, *shell)
        if w is None or s is None:
            return "text", None
        if results == 0:
            return "write", w
        if results == 1:
            return "shell", s
        return "text", None

    # Anthropic Messages API
    def _anthropic(self, body: dict[str, Any], rec: dict[str, Any]) -> None:
        sc = self.owner.script
        results = sum(1 for m in body.get("messages", []) if isinstance(m.get("content"), list)
                      for b in m["content"] if isinstance(b, dict)
                      and b.get("type") == "tool_result")
        step, tool = self._step(results, _tool_names(body.get("tools", [])), ("Write",),
                                ("Bash",))
        rec["answer"] = f"{step} {tool or ''}"
        model = body.get("model", "claude-test")
        mid = "msg_" + uuid.uuid4().hex[:20]
        usage = {"input_tokens": 10, "output_tokens": 5}
        if step == "write":
            block: dict[str, Any] = {"type": "tool_use", "id": "toolu_" + uuid.uuid4().hex[:16],
                                     "name": tool, "input": {}}
            args = {"file_path": sc.path, "content": sc.content}
        elif step == "shell":
            block = {"type": "tool_use", "id": "toolu_" + uuid.uuid4().hex[:16], "name": tool,
                     "input": {}}
            args = {"command": sc.command, "description": "Run the command"}
        else:
            block, args = {"type": "text", "text": ""}, {}
        stop = "tool_use" if step != "text" else "end_turn"
        message = {"id": mid, "type": "message", "role": "assistant", "model": model,
                   "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}
        if not body.get("stream"):
            full = {**block, "input": args} if step != "text" else {"type": "text",
                                                                      "text": sc.done}
            self._send(200, {**message, "content": [full], "stop_reason": stop})
            return
        if step == "text":
            delta: dict[str, Any] = {"type": "text_delta", "text": sc.done}
        else:
            delta = {"type": "input_json_delta", "partial_json": json.dumps(args)}
        self._sse([
            ("message_start", {"type": "message_start", "message": message}),
            ("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": block}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ("message_delta", {"type": "message_delta",
                               "delta": {"stop_reason": stop, "stop_sequence": None},
                               "usage": {"output_tokens": 5}}),
            ("message_stop", {"type": "message_stop"}),
        ])

    # OpenAI Responses API (Codex)
    def _responses(self, body: dict[str, Any], rec: dict[str, Any]) -> None:
        sc = self.owner.script
        items = body.get("input", [])
        results = sum(1 for i in items if isinstance(i, dict) and i.get("type") in (
            "function_call_output", "custom_tool_call_output", "local_shell_call_output"))
        names = _tool_names(body.get("tools", []))
        step, tool = self._step(results, names, ("write", "apply_patch", "shell", "exec_command"),
                                ("bash", "shell", "exec_command", "shell_command"))
        rec["answer"] = f"{step} {tool or ''}"
        rid = "resp_" + uuid.uuid4().hex[:20]
        cid = "call_" + uuid.uuid4().hex[:16]
        item: dict[str, Any]
        tool_def = next((t for t in body.get("tools", []) if t.get("name") == tool), {})
        if step == "write" and tool == "write":  # opencode
            item = {"type": "function_call", "id": "fc_" + cid, "call_id": cid, "name": tool,
                    "arguments": json.dumps({"filePath": sc.path, "content": sc.content}),
                    "status": "completed"}
        elif step == "shell" and tool == "bash":
            item = {"type": "function_call", "id": "fc_" + cid, "call_id": cid, "name": tool,
                    "arguments": json.dumps({"command": sc.command, "description": "Run it"}),
                    "status": "completed"}
        elif step == "write" and tool == "apply_patch":
            patch = ("*** Begin Patch\n*** Add File: " + sc.path + "\n"
                     + "".join("+" + line + "\n" for line in sc.content.splitlines())
                     + "*** End Patch\n")
            if tool_def.get("type") == "custom":
                item = {"type": "custom_tool_call", "id": "ctc_" + cid,
                                        "call_id": cid, "name": tool, "input": patch,
                                        "status": "completed"}
            else:
                item = {"type": "function_call", "id": "fc_" + cid, "call_id": cid,
                        "name": tool, "arguments": json.dumps({"input": patch}),
                        "status": "completed"}
        elif step in ("write", "shell"):
            cmd = sc.command if step == "shell" else \
                f"printf %s {shlex.quote(sc.content)} > {shlex.quote(sc.path)}"
            if tool == "exec_command":
                args: dict[str, Any] = {"cmd": cmd}
            elif tool == "shell_command":
                args = {"command": cmd}
            else:
                args = {"command": ["bash", "-lc", cmd]}
            item = {"type": "function_call", "id": "fc_" + cid, "call_id": cid, "name": tool,
                    "arguments": json.dumps(args), "status": "completed"}
        else:
            item = {"type": "message", "id": "msg_" + cid, "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": sc.done, "annotations": []}]}
        resp = {"id": rid, "object": "response", "created_at": 0, "status": "in_progress",
                "model": body.get("model", "gpt-test"), "output": []}
        usage = {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": 15}
        self._sse([
            ("response.created", {"type": "response.created", "response": resp}),
            ("response.output_item.added", {"type": "response.output_item.added",
                                            "output_index": 0, "item": item}),
            ("response.output_item.done", {"type": "response.output_item.done",
                                           "output_index": 0, "item": item}),
            ("response.completed", {"type": "response.completed", "response": {
                **resp, "status": "completed", "output": [item], "usage": usage}}),
        ])

    # OpenAI chat completions (aider, opencode, qwen)
    def _chat(self, body: dict[str, Any], rec: dict[str, Any]) -> None:
        sc = self.owner.script
        msgs = body.get("messages", [])
        results = sum(1 for m in msgs if isinstance(m, dict) and m.get("role") == "tool")
        names = _tool_names(body.get("tools", []))
        step, tool = self._step(results, names, ("write", "write_file"),
                                ("bash", "run_shell_command", "shell"))
        text: str | None = None
        call: dict[str, Any] | None = None
        cid = "call_" + uuid.uuid4().hex[:16]
        if step == "write":
            key = "filePath" if tool == "write" else "file_path"
            call = {"id": cid, "type": "function", "function": {
                "name": tool, "arguments": json.dumps({key: sc.path, "content": sc.content})}}
        elif step == "shell":
            call = {"id": cid, "type": "function", "function": {
                "name": tool, "arguments": json.dumps(
                    {"command": sc.command, "description": "Run the command"})}}
        else:
            text = _plain_reply(sc, msgs, names)
        rec["answer"] = f"{step} {tool or ''}"
        model = body.get("model", "gpt-test")
        finish = "tool_calls" if call else "stop"
        base = {"id": "chatcmpl-" + cid, "created": 0, "model": model}
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        if not body.get("stream"):
            msg: dict[str, Any] = {"role": "assistant", "content": text}
            if call:
                msg["tool_calls"] = [call]
            self._send(200, {**base, "object": "chat.completion", "usage": usage, "choices": [
                {"index": 0, "message": msg, "finish_reason": finish}]})
            return
        first: dict[str, Any] = {"role": "assistant", "content": text or ""}
        if call:
            first["tool_calls"] = [{"index": 0, **call}]
        ch = {**base, "object": "chat.completion.chunk"}
        self._sse([
            (None, {**ch, "choices": [{"index": 0, "delta": first, "finish_reason": None}]}),
            (None, {**ch, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}),
            (None, {**ch, "choices": [], "usage": usage}),
            (None, "[DONE]"),
        ])

    # Gemini generateContent / streamGenerateContent
    def _gemini(self, body: dict[str, Any], rec: dict[str, Any], stream: bool) -> None:
        sc = self.owner.script
        results = sum(1 for c in body.get("contents", []) for p in c.get("parts", [])
                      if isinstance(p, dict) and "functionResponse" in p)
        names = _tool_names(body.get("tools", []))
        step, tool = self._step(results, names, ("write_file",), ("run_shell_command",))
        rec["answer"] = f"{step} {tool or ''}"
        if step == "write":
            part: dict[str, Any] = {"functionCall": {"name": tool, "args": {
                "file_path": sc.path, "content": sc.content}}}
        elif step == "shell":
            part = {"functionCall": {"name": tool, "args": {
                "command": sc.command, "description": "Run the command"}}}
        else:
            cfg = body.get("generationConfig") or {}
            if cfg.get("responseMimeType") == "application/json":  # side requests (routing)
                part = {"text": json.dumps({"next_speaker": "user", "reasoning": "done",
                                            "model_choice": "flash", "complexity_score": 1})}
            else:
                part = {"text": sc.done}
        out = {"candidates": [{"content": {"role": "model", "parts": [part]},
                               "finishReason": "STOP", "index": 0}],
               "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5,
                                 "totalTokenCount": 15},
               "modelVersion": "gemini-test"}
        if stream:
            self._sse([(None, out)])
        else:
            self._send(200, out)
