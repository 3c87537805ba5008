"""Each Spark pass of ``scripts/test`` runs the Spark it names, and Spark really runs there.

``scripts/test`` runs the Spark tests three times (pyspark 3.5, 4.1.3, 4.1.1: Glue 5.x, 6.1 and
6.0) and sets ``ETL_EXPECT_PYSPARK`` for the 4.1 passes; without this test a pass whose
``PYTHONPATH`` did not take would prove the wrong line and stay green.
"""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.spark


def test_the_pass_runs_the_pyspark_it_names() -> None:
    import pyspark

    expected = os.environ.get("ETL_EXPECT_PYSPARK", "3.5.")
    assert pyspark.__version__.startswith(expected), (pyspark.__version__, expected)


def test_the_jvm_runs_the_same_spark_as_the_python_side() -> None:
    import pyspark

    from event_driven_etl.testing._spark import spark_session

    spark = spark_session()
    assert spark.version == pyspark.__version__
