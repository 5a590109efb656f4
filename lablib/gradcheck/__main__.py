"""``python -m lablib.gradcheck``."""

from lablib.gradcheck import main

main()
