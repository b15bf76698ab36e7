import sys

from kmeans.cli import main

sys.exit(main())
