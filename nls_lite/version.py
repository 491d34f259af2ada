# The original never bumped this from '1.0.0' (1.0.2 and 1.1.0 both report it); code compares against it.
# The distribution's own version is in importlib.metadata.version('speech-sdk-lite').
__version__ = '1.0.0'
