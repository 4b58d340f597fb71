"""Package metadata. Exact versions of everything, transitive included, are in requirements.lock."""

from setuptools import find_packages, setup

setup(
    name="btc_lifecycle",
    version="0.1.0",
    description="The ML lifecycle on BTC/USDT minute candles as a Dagster asset graph",
    packages=find_packages(exclude=["btc_lifecycle_tests*"]),
    package_data={"btc_lifecycle": ["reporting/templates/*.html"]},
    python_requires=">=3.11,<3.12",
    install_requires=[
        "dagster==1.13.27",
        "dagster-webserver==1.13.27",
        "dagster-duckdb==0.29.27",
        "dagster-mlflow==0.29.27",
        "ccxt==4.5.64",
        "duckdb==2.0.1",
        "pandas==2.3.3",  # evidently 0.7 needs pandas < 3
        "plotly==5.24.1",  # evidently 0.7 needs plotly < 6
        "kaleido==0.2.1",  # ships its own headless Chromium: renders offline
        "weasyprint==70.0",
        "xgboost-cpu==3.2.0",  # the xgboost library without the 350 MB NCCL download
        "evidently==0.7.23",
        "mlflow==3.17.2",
        "tabulate==0.10.0",
        "pyarrow==25.0.1",  # the feature store hands DuckDB Arrow tables without copying
    ],
    extras_require={"test": ["pytest==9.2.0", "pypdf==7.1.1", "playwright==1.65.2"]},
    entry_points={"console_scripts": ["btc-replay-exchange=btc_lifecycle.replay_exchange.__main__:main"]},
)
