"""WS-Management shells carrying PSRP, as a Windows WinRM service serves them (MS-WSMV + MS-PSRP).

Each Create opens a PowerShell runspace pool (psrpcore's ``ServerRunspacePool``); each Command starts a
pipeline whose script is handed to the host model's executor in its own thread; Receive long-polls for
the PSRP fragments addressed to the pool or to one pipeline. This module knows nothing about HTTP or
authentication; ``endpoint.py`` feeds it decrypted SOAP envelopes.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from xml.sax.saxutils import escape

from psrpcore import (
    CreatePipelineEvent,
    EndOfPipelineInputEvent,
    PipelineInputEvent,
    PowerShell,
    PSRPEvent,
    PSRPPayload,
    ServerPipeline,
    ServerRunspacePool,
    StreamType,
)
from psrpcore._payload import PSRPMessage, create_message
from psrpcore.types import (
    ApplicationPrivateData,
    ErrorCategory,
    ErrorCategoryInfo,
    ErrorRecord,
    NETException,
    PSInvocationState,
    PSPrimitiveDictionary,
    PSRPMessageType,
    RunspacePoolStateMsg,
    SessionCapability,
    deserialize,
    serialize,
)
from psrpcore.types import PipelineState as PipelineStateMsg

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "wsman": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "pwsh": "http://schemas.microsoft.com/powershell",
    "wst": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
}
_TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
_SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
_STATE_DONE = _SHELL + "CommandState/Done"
_STATE_RUNNING = _SHELL + "CommandState/Running"

# WSMan fault codes Windows returns (winerror.h ERROR_WSMAN_*), as pypsrp expects them.
FAULT_OPERATION_TIMEOUT = 2150858793
FAULT_SHELL_NOT_FOUND = 2150858843
FAULT_UNSUPPORTED = 2150858762


@dataclass
class ScriptRun:
    """One pipeline invocation as the host model sees it."""

    script: str
    parameters: dict[str, Any]
    input: list[Any]
    cancelled: threading.Event


@dataclass
class ScriptOutcome:
    """What a script produced: output objects, non-terminating errors, and a terminating error if it threw."""

    output: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    failure: str | None = None


Executor = Callable[[ScriptRun], ScriptOutcome]


class WSManFault(Exception):
    """A SOAP fault to return with HTTP 500."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Pipeline:
    core: ServerPipeline
    cancelled: threading.Event = field(default_factory=threading.Event)
    inputs: list[Any] = field(default_factory=list)
    script: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    no_input: bool = True
    started: bool = False
    refusal: str | None = None  # why the lab will not run this pipeline (it fails with this error instead)


_MEMO_TYPES = frozenset(
    {PSRPMessageType.SessionCapability, PSRPMessageType.InitRunspacePool, PSRPMessageType.CreatePipeline}
)
_MEMO_LIMIT = 256


class _LabRunspacePool(ServerRunspacePool):
    """psrpcore's server runspace pool, deserializing each distinct opening or pipeline message once per process.

    Every client sends the same SessionCapability and InitRunspacePool CLIXML, and the same CreatePipeline for
    the same script and parameters; psrpcore would rebuild the same objects from it on every shell (a quarter of
    the lab's CPU per host). The objects are only read (the lab copies parameter values out with ``_plain``),
    so one deserialized copy serves every shell. Nothing changes on the wire. Messages that carry a SecureString
    depend on the session key and are never shared.
    """

    _memo: ClassVar[dict[tuple[PSRPMessageType, bytes, str], Any]] = {}
    _rendered: ClassVar[dict[tuple[Any, ...], bytes]] = {}
    _memo_lock: ClassVar[threading.Lock] = threading.Lock()

    def _process_message(self, message: Any) -> PSRPEvent[Any, Any]:
        data = bytes(message.data)
        if message.message_type not in _MEMO_TYPES or b"<SS" in data:
            return super()._process_message(message)
        their = self.their_capability
        key = (message.message_type, data, str(their.SerializationVersion) if their is not None else "")
        with self._memo_lock:
            ps_object = self._memo.get(key)
        if ps_object is None:
            ps_object = deserialize(
                ET.fromstring(data),
                cipher=self._cipher,
                our_capability=self.our_capability,
                their_capability=their,
            )
            with self._memo_lock:
                if len(self._memo) >= _MEMO_LIMIT:
                    self._memo.clear()
                self._memo[key] = ps_object
        # What psrpcore's own _process_message does with the object: an event, then the pool's handler for it.
        event = PSRPEvent.create(message.message_type, ps_object, message.runspace_pool_id, message.pipeline_id)
        handler = getattr(self, f"_process_{message.message_type.name}", None)
        if handler is not None:
            handler(event)
        return event

    def prepare_message(
        self,
        message: Any,
        message_type: PSRPMessageType | None = None,
        pipeline_id: uuid.UUID | None = None,
        stream_type: StreamType = StreamType.default,
    ) -> None:
        """psrpcore's prepare_message, rendering each constant reply (capability, private data, states) once."""
        key = _outgoing_key(message) if message_type is None else None
        if key is None:
            super().prepare_message(message, message_type, pipeline_id, stream_type)
            return
        with self._memo_lock:
            data = self._rendered.get(key)
        if data is None:
            element = serialize(
                message, self._cipher, our_capability=self.our_capability, their_capability=self.their_capability
            )
            data = ET.tostring(element, encoding="utf-8", method="xml")
            with self._memo_lock:
                if len(self._rendered) >= _MEMO_LIMIT:
                    self._rendered.clear()
                self._rendered[key] = data
        # The rest is what psrpcore's prepare_message does with the rendered CLIXML.
        kind = PSRPMessageType.get_message_id(type(message))
        raw = create_message(self._is_client, kind, data, self.runspace_pool_id, pipeline_id)
        self._send_buffer.append(
            PSRPMessage(kind, bytearray(raw), self.runspace_pool_id, pipeline_id, self._fragment_counter, stream_type)
        )


def _outgoing_key(message: Any) -> tuple[Any, ...] | None:
    """A key for a reply whose CLIXML depends only on these values, or None."""
    if isinstance(message, SessionCapability) and message.TimeZone is None:
        return (
            "SessionCapability",
            str(message.PSVersion),
            str(message.protocolversion),
            str(message.SerializationVersion),
        )
    if isinstance(message, RunspacePoolStateMsg) and message.ExceptionAsErrorRecord is None:
        return ("RunspacePoolState", int(message.RunspaceState))
    if isinstance(message, PipelineStateMsg) and message.ExceptionAsErrorRecord is None:
        return ("PipelineState", int(message.PipelineState))
    if isinstance(message, ApplicationPrivateData):
        data = message.ApplicationPrivateData
        if type(data) is PSPrimitiveDictionary and not data.PSObject.extended_properties and _plain_data(dict(data)):
            return ("ApplicationPrivateData", repr(data))
    return None


def _plain_data(value: Any) -> bool:
    if value is None or type(value) in (str, int, bool):
        return True
    if type(value) is dict:
        return all(type(k) is str and _plain_data(v) for k, v in value.items())
    return type(value) is list and all(_plain_data(v) for v in value)


class Shell:
    """One runspace pool and its pipelines. All psrpcore calls happen under ``self.lock``."""

    def __init__(self, executor: Executor, private_data: dict[str, Any]) -> None:
        self.executor = executor
        self.pool = _LabRunspacePool(application_private_data=private_data)
        self.lock = threading.Condition()
        self.pipelines: dict[uuid.UUID, _Pipeline] = {}
        self.outbox: dict[uuid.UUID | None, list[bytes]] = {}
        self.closed = False

    # -- inbound -----------------------------------------------------------------------------------------
    def feed(self, data: bytes, pipeline_id: uuid.UUID | None) -> None:
        with self.lock:
            self.pool.receive_data(PSRPPayload(data, StreamType.default, pipeline_id))
            while (event := self.pool.next_event()) is not None:
                self._on_event(event)
            self._drain()
            self.lock.notify_all()

    def _on_event(self, event: Any) -> None:
        if isinstance(event, CreatePipelineEvent):
            pipe = self.pipelines[event.pipeline_id]
            # psrpcore has built the pipeline's metadata from the message already; event.pipeline builds it anew.
            metadata = pipe.core.metadata if isinstance(pipe.core.metadata, PowerShell) else event.pipeline
            commands = list(metadata.commands)
            pipe.refusal = _refusal(commands)
            if pipe.refusal is None:
                pipe.script = commands[0].command_text
                pipe.parameters = {str(name): _plain(value) for name, value in commands[0].parameters}
            pipe.no_input = bool(metadata.no_input)
            if pipe.no_input or pipe.refusal is not None:
                self._start(pipe)
        elif isinstance(event, PipelineInputEvent):
            if event.pipeline_id in self.pipelines:
                self.pipelines[event.pipeline_id].inputs.append(_plain(event.data))
        elif isinstance(event, EndOfPipelineInputEvent) and event.pipeline_id in self.pipelines:
            self._start(self.pipelines[event.pipeline_id])

    def new_pipeline(self, pipeline_id: uuid.UUID) -> None:
        with self.lock:
            self.pipelines[pipeline_id] = _Pipeline(ServerPipeline(self.pool, pipeline_id))

    def _start(self, pipe: _Pipeline) -> None:
        if pipe.started:
            return
        pipe.started = True
        pipe.core.start()
        if pipe.refusal is not None:
            self._finish(pipe, ScriptOutcome(failure=pipe.refusal))
            return
        run = ScriptRun(pipe.script or "", pipe.parameters, pipe.inputs, pipe.cancelled)
        threading.Thread(target=self._execute, args=(pipe, run), daemon=True, name="lab-pipeline").start()

    def _execute(self, pipe: _Pipeline, run: ScriptRun) -> None:
        try:
            outcome = self.executor(run)
        except Exception as exc:  # the model's bug becomes the script's terminating error, as on Windows
            outcome = ScriptOutcome(failure=f"{type(exc).__name__}: {exc}")
        with self.lock:
            self._finish(pipe, outcome)

    def _finish(self, pipe: _Pipeline, outcome: ScriptOutcome) -> None:
        """Send a pipeline's output and final state (called under ``self.lock``)."""
        if pipe.core.state != PSInvocationState.Running or self.closed:
            return
        for item in outcome.output:
            pipe.core.write_output(item)
        for message in outcome.errors:
            pipe.core.write_error(
                NETException(Message=message),
                ErrorCategoryInfo(Category=ErrorCategory.NotSpecified, Reason="WriteErrorException"),
                fully_qualified_error_id="Microsoft.PowerShell.Commands.WriteErrorException",
            )
        if outcome.failure is not None:
            record = ErrorRecord(
                Exception=NETException(Message=outcome.failure),
                CategoryInfo=ErrorCategoryInfo(Category=ErrorCategory.OperationStopped, Reason="RuntimeException"),
                FullyQualifiedErrorId=outcome.failure,
            )
            pipe.core._change_state(PSInvocationState.Failed, error=record)  # psrpcore has no public fail()
        else:
            pipe.core.complete()
        self._drain()
        self.lock.notify_all()

    # -- outbound ----------------------------------------------------------------------------------------
    def _drain(self) -> None:
        while (payload := self.pool.data_to_send(32768)) is not None:
            self.outbox.setdefault(payload.pipeline_id, []).append(payload.data)

    def receive(self, pipeline_id: uuid.UUID | None, timeout: float, budget: int) -> tuple[bytes, bool]:
        """Wait up to ``timeout`` for data for the pool or a pipeline. Returns (data, pipeline_done)."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                queue = self.outbox.get(pipeline_id)
                if queue:
                    taken: list[bytes] = []
                    size = 0
                    while queue and (not taken or size + len(queue[0]) <= budget):
                        chunk = queue.pop(0)
                        taken.append(chunk)
                        size += len(chunk)
                    return b"".join(taken), self._pipeline_done(pipeline_id) and not queue
                if pipeline_id is not None and pipeline_id not in self.pipelines:
                    raise WSManFault(FAULT_SHELL_NOT_FOUND, "The request for the pipeline is invalid: no such command.")
                if self.closed:
                    raise WSManFault(FAULT_SHELL_NOT_FOUND, "The shell was not found on the server.")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WSManFault(
                        FAULT_OPERATION_TIMEOUT,
                        "The WS-Management service cannot complete the operation within the time specified in "
                        "OperationTimeout.",
                    )
                self.lock.wait(remaining)

    def _pipeline_done(self, pipeline_id: uuid.UUID | None) -> bool:
        if pipeline_id is None:
            return False
        pipe = self.pipelines.get(pipeline_id)
        return pipe is not None and pipe.core.state in (
            PSInvocationState.Completed,
            PSInvocationState.Failed,
            PSInvocationState.Stopped,
        )

    # -- signals -----------------------------------------------------------------------------------------
    def signal(self, pipeline_id: uuid.UUID, code: str) -> None:
        with self.lock:
            pipe = self.pipelines.get(pipeline_id)
            if pipe is None:
                return
            pipe.cancelled.set()
            if code.endswith("ctrl_c"):
                if pipe.core.state == PSInvocationState.Running:
                    pipe.core.stop()
                    self._drain()
            else:
                self.pipelines.pop(pipeline_id, None)
                self.outbox.pop(pipeline_id, None)
            self.lock.notify_all()

    def close(self) -> None:
        with self.lock:
            self.closed = True
            for pipe in self.pipelines.values():
                pipe.cancelled.set()
            self.lock.notify_all()


def _refusal(commands: list[Any]) -> str | None:
    """Why the lab refuses a pipeline, or None. Windows would run any of these; procaudit never sends them, so
    the lab fails them loudly instead: only one shipped script per pipeline, its parameters bound by name."""
    if len(commands) != 1:
        return (
            f"procaudit lab: refused a pipeline of {len(commands)} commands; procaudit sends exactly one script "
            "per pipeline"
        )
    command = commands[0]
    if not command.is_script:
        return (
            f"procaudit lab: refused the command {str(command.command_text)[:60]!r}: only the text of a shipped "
            "script is run (AddScript), never a command by name (AddCommand)"
        )
    names = [name for name, _ in command.parameters]
    if any(name is None for name in names):
        return "procaudit lab: refused a positional argument; procaudit binds every parameter by name"
    folded = [str(name).lower() for name in names]
    repeated = sorted({str(n) for n in names if folded.count(str(n).lower()) > 1})
    if repeated:
        return f"procaudit lab: Cannot bind parameter because parameter '{repeated[0]}' is specified more than once."
    return None


def _plain(value: Any) -> Any:
    """Turn psrpcore's typed values (PSString, PSInt, PSList, PSDict, ...) into plain Python values."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, dict):
        return {str(_plain(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


class ShellService:
    """The shells of one lab host, addressed by ShellId."""

    def __init__(
        self,
        executor: Executor,
        private_data: dict[str, Any],
        endpoint_url: str,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        self.executor = executor
        self.private_data = private_data
        self.endpoint_url = endpoint_url
        self.on_stop = on_stop
        self.shells: dict[str, Shell] = {}
        self._lock = threading.Lock()

    def close_all(self) -> None:
        with self._lock:
            shells = list(self.shells.values())
            self.shells.clear()
        for shell in shells:
            shell.close()

    def handle(self, envelope: bytes) -> tuple[int, bytes]:
        """Process one SOAP request; returns (HTTP status, SOAP response)."""
        root = ET.fromstring(envelope)
        header = root.find("s:Header", NS)
        body = root.find("s:Body", NS)
        if header is None or body is None:
            return 400, b""
        action = _text(header, "wsa:Action")
        message_id = _text(header, "wsa:MessageID")
        timeout = _duration(_text(header, "wsman:OperationTimeout"), default=60.0)
        max_envelope = int(_text(header, "wsman:MaxEnvelopeSize") or "153600")
        shell_id = ""
        selector = header.find("wsman:SelectorSet/wsman:Selector[@Name='ShellId']", NS)
        if selector is not None and selector.text:
            shell_id = selector.text.strip().upper()  # a GUID: compared without regard to case
        try:
            reply_action, reply_body = self._dispatch(action, body, shell_id, timeout, max_envelope)
        except WSManFault as fault:
            return 500, _fault_envelope(message_id, fault)
        return 200, _envelope(reply_action, message_id, reply_body)

    def _dispatch(
        self, action: str, body: ET.Element, shell_id: str, timeout: float, max_envelope: int
    ) -> tuple[str, str]:
        if action == _TRANSFER + "Create":
            return self._create(body)
        shell = self.shells.get(shell_id)
        if shell is None:
            raise WSManFault(
                FAULT_SHELL_NOT_FOUND,
                "The request for the Windows Remote Shell with ShellId "
                f"{shell_id} failed because the shell was not found on the server.",
            )
        if action == _SHELL + "Command":
            return self._command(shell, body)
        if action == _SHELL + "Send":
            return self._send(shell, body)
        if action == _SHELL + "Receive":
            return self._receive(shell, body, timeout, max_envelope)
        if action == _SHELL + "Signal":
            return self._signal(shell, body)
        if action == _TRANSFER + "Delete":
            with self._lock:
                self.shells.pop(shell_id, None)
            shell.close()
            return _TRANSFER + "DeleteResponse", ""
        raise WSManFault(FAULT_UNSUPPORTED, f"The WS-Management service does not support the action {action}.")

    def _create(self, body: ET.Element) -> tuple[str, str]:
        shell_el = body.find("rsp:Shell", NS)
        creation = body.find("rsp:Shell/pwsh:creationXml", NS)
        if shell_el is None or creation is None or not creation.text:
            raise WSManFault(FAULT_UNSUPPORTED, "The lab only serves PowerShell (PSRP) shells.")
        shell_id = (shell_el.get("ShellId") or str(uuid.uuid4())).upper()
        shell = Shell(self.executor, self.private_data)
        with self._lock:
            if shell_id in self.shells:
                # Which fault code Windows returns here is not verified; the lab uses its generic one.
                raise WSManFault(
                    FAULT_UNSUPPORTED,
                    f"The WS-Management service cannot create the resource: a shell with ShellId {shell_id} "
                    "already exists.",
                )
            self.shells[shell_id] = shell
        shell.feed(base64.b64decode(creation.text), None)
        reply = (
            f"<wst:ResourceCreated><wsa:Address>{escape(self.endpoint_url)}</wsa:Address><wsa:ReferenceParameters>"
            "<wsman:ResourceURI>http://schemas.microsoft.com/powershell/Microsoft.PowerShell</wsman:ResourceURI>"
            f'<wsman:SelectorSet><wsman:Selector Name="ShellId">{shell_id}</wsman:Selector></wsman:SelectorSet>'
            "</wsa:ReferenceParameters></wst:ResourceCreated>"
            f"<rsp:Shell><rsp:ShellId>{shell_id}</rsp:ShellId>"
            "<rsp:ResourceUri>http://schemas.microsoft.com/powershell/Microsoft.PowerShell</rsp:ResourceUri>"
            "<rsp:InputStreams>stdin pr</rsp:InputStreams><rsp:OutputStreams>stdout</rsp:OutputStreams></rsp:Shell>"
        )
        return _TRANSFER + "CreateResponse", reply

    def _command(self, shell: Shell, body: ET.Element) -> tuple[str, str]:
        line = body.find("rsp:CommandLine", NS)
        if line is None:
            raise WSManFault(FAULT_UNSUPPORTED, "Command without a CommandLine.")
        command_id = (line.get("CommandId") or str(uuid.uuid4())).upper()
        pipeline_id = uuid.UUID(command_id)
        shell.new_pipeline(pipeline_id)
        arguments = line.find("rsp:Arguments", NS)
        if arguments is not None and arguments.text:
            shell.feed(base64.b64decode(arguments.text), pipeline_id)
        return (
            _SHELL + "CommandResponse",
            f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId></rsp:CommandResponse>",
        )

    def _send(self, shell: Shell, body: ET.Element) -> tuple[str, str]:
        for stream in body.findall("rsp:Send/rsp:Stream", NS):
            command_id = stream.get("CommandId")
            shell.feed(base64.b64decode(stream.text or ""), uuid.UUID(command_id) if command_id else None)
        return _SHELL + "SendResponse", "<rsp:SendResponse/>"

    def _receive(self, shell: Shell, body: ET.Element, timeout: float, max_envelope: int) -> tuple[str, str]:
        desired = body.find("rsp:Receive/rsp:DesiredStream", NS)
        command_id = desired.get("CommandId") if desired is not None else None
        pipeline_id = uuid.UUID(command_id) if command_id else None
        budget = max(4096, max_envelope * 3 // 4 - 4096)  # base64 inflates by 4/3; leave room for the envelope
        data, done = shell.receive(pipeline_id, timeout, budget)
        id_attr = f' CommandId="{command_id.upper()}"' if command_id else ""
        reply = (
            f'<rsp:ReceiveResponse><rsp:Stream Name="stdout"{id_attr}>{base64.b64encode(data).decode()}</rsp:Stream>'
        )
        if command_id:
            state = _STATE_DONE if done else _STATE_RUNNING
            reply += f'<rsp:CommandState CommandId="{command_id.upper()}" State="{state}"/>'
        return _SHELL + "ReceiveResponse", reply + "</rsp:ReceiveResponse>"

    def _signal(self, shell: Shell, body: ET.Element) -> tuple[str, str]:
        signal = body.find("rsp:Signal", NS)
        if signal is None or not signal.get("CommandId"):
            raise WSManFault(FAULT_UNSUPPORTED, "Signal without a CommandId.")
        code = _text(signal, "rsp:Code")
        shell.signal(uuid.UUID(signal.get("CommandId", "")), code)
        if code.endswith("ctrl_c") and self.on_stop is not None:
            self.on_stop()
        return _SHELL + "SignalResponse", "<rsp:SignalResponse/>"


def _text(parent: ET.Element, path: str) -> str:
    element = parent.find(path, NS)
    return (element.text or "").strip() if element is not None else ""


def _duration(value: str, default: float) -> float:
    """Parse the ``PT20S`` / ``PT20.000S`` durations pypsrp sends."""
    if value.startswith("PT") and value.endswith("S"):
        try:
            return float(value[2:-1])
        except ValueError:
            return default
    return default


_ENVELOPE_HEAD = (
    '<s:Envelope xmlns:s="{s}" xmlns:wsa="{wsa}" xmlns:wsman="{wsman}" xmlns:rsp="{rsp}" xmlns:wst="{wst}">'.format(
        **NS
    )
)


def _envelope(action: str, relates_to: str, body: str) -> bytes:
    return (
        f"{_ENVELOPE_HEAD}<s:Header><wsa:Action>{action}</wsa:Action>"
        f"<wsa:MessageID>uuid:{str(uuid.uuid4()).upper()}</wsa:MessageID>"
        f"<wsa:RelatesTo>{escape(relates_to)}</wsa:RelatesTo>"
        "<wsa:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To>"
        f"</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def _fault_envelope(relates_to: str, fault: WSManFault) -> bytes:
    subcode = "TimedOut" if fault.code == FAULT_OPERATION_TIMEOUT else "InternalError"
    body = (
        "<s:Fault><s:Code><s:Value>s:Receiver</s:Value>"
        f"<s:Subcode><s:Value>wsman:{subcode}</s:Value></s:Subcode></s:Code>"
        f'<s:Reason><s:Text xml:lang="en-US">{escape(fault.message)}</s:Text></s:Reason>'
        '<s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" '
        f'Code="{fault.code}" Machine="lab"><f:Message>{escape(fault.message)}</f:Message></f:WSManFault></s:Detail>'
        "</s:Fault>"
    )
    return _envelope("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", relates_to, body)
