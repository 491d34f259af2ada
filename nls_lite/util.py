"""Helpers of the NLS SDK: the request context and WAV-to-PCM extraction."""
import struct

__all__ = ['wav2pcm', 'GetDefaultContext']

_SDK_NAME = 'nls-python-sdk'
_SDK_VERSION = '1.1.0'


def GetDefaultContext():
    """The `context` object sent with every request; a new dict each call."""
    return {'sdk': {'name': _SDK_NAME, 'version': _SDK_VERSION, 'language': 'python'}}


def _data_chunk(wav):
    """Offset and length of the payload of the first `data` chunk of a RIFF/WAVE byte string."""
    if len(wav) < 12 or wav[0:4] != b'RIFF' or wav[8:12] != b'WAVE':
        raise ValueError('not a wav!')
    pos = 12
    while pos + 8 <= len(wav):
        chunk_id = wav[pos:pos + 4]
        size = struct.unpack_from('<I', wav, pos + 4)[0]
        pos += 8
        if chunk_id == b'data':
            remaining = len(wav) - pos
            # Streaming writers leave the size as 0 or 0xFFFFFFFF: take the rest of the file then.
            return pos, remaining if size == 0 or size > remaining else size
        pos += size + (size & 1)   # chunks are word aligned
    raise ValueError('not a wav!')


def wav2pcm(wavfile, pcmfile):
    """Write the PCM payload of `wavfile` to `pcmfile`.

    Unlike the original (which assumes a 44-byte header and truncates `pcmfile` first), the data chunk
    is located by walking the RIFF chunks, and the input is validated before the output is opened.
    """
    with open(wavfile, 'rb') as f:
        wav = f.read()
    start, length = _data_chunk(wav)
    with open(pcmfile, 'wb') as out:
        out.write(wav[start:start + length])
