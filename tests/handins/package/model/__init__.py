from .network import *  # noqa: F403 - the template's re-export
