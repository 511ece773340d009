"""Install geopyro: ``pip install .`` (add ``[test]`` for the test tools and the Pyro peers)."""

import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read_version():
    with open(os.path.join(HERE, "geopyro", "__init__.py"), encoding="utf-8") as f:
        return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


def read_readme():
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as f:
        return f.read()


setup(
    name="geopyro",
    version=read_version(),
    description="Pyro5-compatible remote objects on gevent: same API, same wire",
    long_description=read_readme(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    packages=find_packages(include=["geopyro", "geopyro.*", "conformance", "conformance.*"]),
    install_requires=["gevent>=21.12", "serpent>=1.41", "msgpack>=1.0"],
    extras_require={
        "conformance": ["pytest>=7", "pytest-xdist>=3"],
        "test": ["pytest>=7", "pytest-xdist>=3", "pytest-timeout>=2", "hypothesis>=6", "Pyro5>=5.14", "Pyro4>=4.80", "dill>=0.3.6", "cloudpickle>=2.2"],
    },
    entry_points={
        "console_scripts": [
            "geopyro-demo=geopyro.__main__:main",
            "geopyro-ns=geopyro.ns:main",
            "geopyro-nsc=geopyro.nsc:main",
            "geopyro-echoserver=geopyro.utils.echoserver:main",
            "geopyro-httpgateway=geopyro.utils.httpgateway:main",
            "geopyro-serve=geopyro.workers:main",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.9",
        "Programming Language :: Python :: 3.13",
        "Topic :: System :: Networking",
        "Topic :: System :: Distributed Computing",
    ],
)
