#!/usr/bin/env bash
# The command-line tool on .npy files: make an input with NumPy, normalize it, look at the result.
set -euo pipefail
cd "$(mktemp -d)"
/usr/bin/python3 -c "import numpy as np; np.save('x.npy', np.random.default_rng(0).standard_normal((2, 32, 8, 8), dtype=np.float32))"
groupnorm run --x x.npy --groups 8 --out y.npy --activation silu --stats stats.npz
/usr/bin/python3 -c "import numpy as np; y = np.load('y.npy'); print(y.dtype, y.shape, 'mean', np.load('stats.npz')['mean'].shape)"
groupnorm run --x x.npy --groups 3 --out y.npy || echo "exit status $?"
