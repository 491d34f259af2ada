"""Versions: ours, and the vendor SDK release whose behaviour we mirror."""
__version__ = '0.1.0'
# The vendor release whose wire format (user-agent, SDK headers) we reproduce (reference OQ-10).
DASHSCOPE_COMPAT_VERSION = '2.0.2'
