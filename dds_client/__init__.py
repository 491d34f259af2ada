"""dds_client: threaded, callback-based client of the DUI / and-home DDS dialogue gateway."""

import logging as _logging

from .auth import ApiKeyAuth, DeviceAuth, device_signature, registration_signature
from .client import AudioStream, DDSClient, Session
from .errors import (AuthError, CallbackError, ConnectError, ConnectionClosedError, DDSError,
                     DDSTimeoutError, InvalidStateError, ProtocolError, ServerError)
from .protocol import (TOPIC_AUDIO, TOPIC_CONTEXT_SYNC, TOPIC_DATA, TOPIC_INTENT,
                       TOPIC_SKILL_SETTINGS, TOPIC_SYSTEM_SETTINGS, TOPIC_TEXT)
from .request import Request
from .results import AsrResult, DialogResult, NluResult, SettingsAck
from .urls import AND_HOME_URL, build_url, dui_url

__version__ = "0.1.0"

_logging.getLogger("dds_client").addHandler(_logging.NullHandler())

__all__ = [
    "DDSClient", "Session", "AudioStream", "Request",
    "AsrResult", "NluResult", "DialogResult", "SettingsAck",
    "ApiKeyAuth", "DeviceAuth", "device_signature", "registration_signature",
    "AND_HOME_URL", "dui_url", "build_url",
    "DDSError", "ConnectError", "AuthError", "DDSTimeoutError", "ConnectionClosedError",
    "ServerError", "ProtocolError", "InvalidStateError", "CallbackError",
    "TOPIC_TEXT", "TOPIC_AUDIO", "TOPIC_INTENT", "TOPIC_DATA",
    "TOPIC_SYSTEM_SETTINGS", "TOPIC_SKILL_SETTINGS", "TOPIC_CONTEXT_SYNC",
]
