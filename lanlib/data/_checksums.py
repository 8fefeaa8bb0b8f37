"""Known SHA-256 digests of every dataset file that lanlib reads itself.

Keys are paths relative to the data root (the same layout as the offline mirror
named by ``LANLIB_DATA_MIRROR``). Each file may have several accepted versions:

- ``origin="original"``: the file as its publisher distributes it. The MNIST
  digests are those of the files on the MNIST download mirrors (torchvision lists
  their md5s; the SHA-256 values are the ones TensorFlow/Keras and others publish,
  and the MNIST test files in the mirror are byte-identical to them); the
  20 Newsgroups digest is the one scikit-learn checks for its download.
- ``origin="mirror"``: a known variant from the offline mirror, listed in the
  mirror's ``SHA256SUMS``. It is accepted, and its ``note`` (if any) is printed
  once per process, because it differs from the original in a documented way.

CIFAR-10 originals are not listed: that download goes through
``torchvision.datasets.CIFAR10``, which checks its own md5s.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Known", "KNOWN_SHA256"]


class Known(NamedTuple):
    """One accepted version of a dataset file."""

    sha256: str
    origin: str
    note: str = ""


_MNIST_SUBSET_NOTE = (
    "MNIST train split read from the offline mirror copy, which holds only the "
    "first 10,000 of the 60,000 training digits (pixels exact). Online, "
    "load_mnist downloads all 60,000."
)

KNOWN_SHA256: dict[str, tuple[Known, ...]] = {
    "mnist/train-images-idx3-ubyte.gz": (
        Known("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", "original"),
        Known(
            "3ef602e995727b0a9aa7f5ddd860650f6d281e99ba21a746d1bfa6fea4a7f4d8",
            "mirror",
            _MNIST_SUBSET_NOTE,
        ),
    ),
    "mnist/train-labels-idx1-ubyte.gz": (
        Known("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", "original"),
        Known("dccde8b3c99723584f8090cef581b2e49d6be36b682abadf5a414714b48cf7ea", "mirror"),
    ),
    "mnist/t10k-images-idx3-ubyte.gz": (
        Known("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", "original"),
    ),
    "mnist/t10k-labels-idx1-ubyte.gz": (
        Known("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", "original"),
    ),
    "cifar10-imagefolder.tar.gz": (
        Known("7854ea059adc7729ab5267c5269ccc01e6eaeea6549d5f3c834c106bae86e8ee", "mirror"),
    ),
    "20news-bydate.tar.gz": (
        Known("8f1b2514ca22a5ade8fbb9cfa5727df95fa587f4c87b786e15c759fa66d95610", "original"),
        Known("7395a4802f8fc57c7814b2de082cd9943573830c6d84ae050d481538c4ef168f", "mirror"),
    ),
    **{
        f"imagenet-samples/imagenet_{stem}.jpg": (Known(digest, "mirror"),)
        for stem, digest in {
            "00_243": "28b7b933c8028c6e20bf74a86a709eda42ce99f14c8742cb657cb386f08a4c9d",
            "01_559": "5f03b0c74dff01b5b4195d0beabcae2a625a406e6917957ab9c455b5b7dea6d6",
            "02_438": "ccef0734c1a65549c6cb5adb0f5d9b1c0b2e2104aba50a9e5f9202dc6d4532ed",
            "03_990": "c7f0b2f1e9ee39d8f900759e8983afa2e4a2d7de090060e8bb947f6e90cace5f",
            "04_949": "a7f62f3c1d214de4718c7253871ab38209283249e131faf65b8f2b7fdc970669",
            "05_853": "8a449436c61da867528b1f4efaf8ae832ab9c9201705eae0d3af1353fbdac131",
            "06_609": "fb061102a4e58b3ed942bb2a4f9542e1e1acdc8f225ef95498e93889290e192f",
            "07_609": "2c297ad1e5c4804a647e9b34bc02ee2fc348b05a4d49050d170fb61c948efa5c",
            "08_915": "c6a3411a3987799f0de45adc142f00ca412c3e14073c635e2adfae1f3913180c",
            "09_455": "ace3716b60ac5843269b270e17020e4f8138440cd30ef3487f7d6e54da9745a4",
            "10_541": "f325c71d9f4290ee45e99bd7ad42f4bffe513b1450ad21e7bd61c7cb137395d9",
            "11_630": "892dff58fc528fe63d2df0c783aa3eca2342637798578ce01763fbc0553eda01",
            "12_741": "6c256e17545b25bbf2e06cf6513ff48d049583569515ac4d4c3a52aea804a529",
            "13_471": "52ed0e738b90d27afcabc3e92c81ae637f160c2d9f75b93a65211005ab5dcd81",
            "14_129": "ad9371d813bf24b0365ee2f78f28c08718ee7c5975f060caa16c3f264e828139",
            "15_99": "4b588649cd835d4c65521727ebee03d9621baff1f54d3e8a53a26b53d983ec2e",
            "16_251": "ce3440a3b7beb6ca3009817504c44d39fa789e7c2f70a2eef7e2f9cc9a87b129",
            "17_22": "b432341845620e9cfd67d848c4783c32dd6eaddad45513866b17180d2b09fcf5",
            "18_317": "b9412f92f0b1c3faede45b55a44940977daa744f2040118d0538cf597fca785d",
            "19_305": "e1f58f00e2e47ce930d7ecab0e46a78316054f68c10d0742e87c1cc092324556",
        }.items()
    },
}
