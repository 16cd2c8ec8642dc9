from setuptools import find_packages, setup

setup(
    name="source-smstools",
    version="0.4.0",
    description="Airbyte source connector for the Smstools SMS gateway API.",
    author="source-smstools developers",
    license="MIT",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["source_smstools", "source_smstools.*", "smstools_emulator"]),
    # the probe report's vocabulary, shared by the probe and the emulator (standard library only)
    py_modules=["smstools_report"],
    package_data={"source_smstools": ["manifest.yaml", "schemas/*.json"]},
    install_requires=["airbyte-cdk==7.39.1"],
    extras_require={
        # the API emulator, for users' own pipeline tests: standard library only, so the extra
        # adds no package; it names the feature (`pip install 'source-smstools[emulator]'`)
        "emulator": [],
        "tests": [
            "pytest==9.2.0",
            "requests-mock==1.12.1",
            "hypothesis==6.170.17",
            "pytest-xdist==3.8.0",
            "freezegun==1.5.5",
            # Airbyte's metadata schema, for the catalogue's checks on `make manifest-only`'s output
            "airbyte-connector-models==0.1.12",
        ],
    },
    entry_points={
        "console_scripts": [
            "source-smstools=source_smstools.run:run",
            "smstools-emulator=smstools_emulator.server:main",
            "source-smstools-probe=source_smstools.probe:run",
        ]
    },
)
