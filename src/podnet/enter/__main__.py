"""`python -m podnet.enter --netns NS --resolv FILE --hostname H -- CMD...` (see run.py)."""

from podnet.enter.run import main

main()
