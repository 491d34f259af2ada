"""nls_lite: a drop-in for the Alibaba Cloud NLS Python SDK. Port with `import nls_lite as nls`."""
from .logging import *              # noqa: F401,F403
from .speech_recognizer import *    # noqa: F401,F403
from .speech_transcriber import *   # noqa: F401,F403
from .util import *                 # noqa: F401,F403
from .version import __version__    # noqa: F401
from . import core, exception, token   # noqa: F401  (nls.token.getToken after a bare import)
