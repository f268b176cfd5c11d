"""Where each downloadable dataset's files come from, and what they must hash to.

Sizes and SHA-256 values are those of the files the datasets' authors publish; every value is
also pinned by other projects that verify these downloads (torchvision's dataset registry,
TensorFlow Datasets' checksums), and the MNIST and Fashion-MNIST test files were hashed here
from copies whose MD5 matches the published one. A download is kept only when its SHA-256
equals the value below, so a mirror cannot hand over anything else.

Mirrors are tried in order; a user's own (``genlab data download --mirror URL``) go first.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RemoteFile:
    name: str  # the file name, the same on every mirror
    size: int  # bytes
    sha256: str


@dataclass(frozen=True)
class Source:
    files: tuple[RemoteFile, ...]
    mirrors: tuple[str, ...]  # base URLs: a file's URL is mirror + "/" + name
    homepage: str
    licence: str


def _idx(*sizes_and_hashes: tuple[int, str]) -> tuple[RemoteFile, ...]:
    names = (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    )
    return tuple(RemoteFile(n, s, h) for n, (s, h) in zip(names, sizes_and_hashes, strict=True))


SOURCES: dict[str, Source] = {
    # LeCun, Cortes & Burges; the original site now refuses most clients, so the copies kept by
    # PyTorch's CI bucket and the CVDF come first.
    "mnist": Source(
        _idx(
            (9_912_422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
            (28_881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
            (1_648_877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
            (4_542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
        ),
        (
            "https://ossci-datasets.s3.amazonaws.com/mnist",
            "https://storage.googleapis.com/cvdf-datasets/mnist",
            "http://yann.lecun.com/exdb/mnist",
        ),
        "http://yann.lecun.com/exdb/mnist/",
        "CC BY-SA 3.0",
    ),
    # Xiao, Rasul & Vollgraf 2017 (arXiv:1708.07747).
    "fashion_mnist": Source(
        _idx(
            (26_421_880, "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
            (29_515, "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
            (4_422_102, "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
            (5_148, "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
        ),
        (
            "https://fashion-mnist.s3.eu-central-1.amazonaws.com",
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
        ),
        "https://github.com/zalandoresearch/fashion-mnist",
        "MIT",
    ),
    # Clanuwat et al. 2018 (arXiv:1812.01718), ROIS-DS Center for Open Data in the Humanities.
    "kmnist": Source(
        _idx(
            (18_165_135, "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4"),
            (29_497, "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17"),
            (3_041_136, "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5"),
            (5_120, "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c"),
        ),
        ("https://codh.rois.ac.jp/kmnist/dataset/kmnist",),
        "https://github.com/rois-codh/kmnist",
        "CC BY-SA 4.0",
    ),
    # Krizhevsky 2009; the binary version (fixed-size records, no pickles).
    "cifar10": Source(
        (
            RemoteFile(
                "cifar-10-binary.tar.gz",
                170_052_171,
                "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
            ),
        ),
        ("https://www.cs.toronto.edu/~kriz",),
        "https://www.cs.toronto.edu/~kriz/cifar.html",
        "no licence stated by the authors; cite Krizhevsky 2009",
    ),
}
