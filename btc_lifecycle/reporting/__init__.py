"""Reports that a person reads: the ingestion PDF and the retention of report folders."""

from btc_lifecycle.reporting.facts import ReportFacts
from btc_lifecycle.reporting.ingestion_report import IngestionReport, build_ingestion_report
from btc_lifecycle.reporting.retention import prune_report_folders

__all__ = ["IngestionReport", "ReportFacts", "build_ingestion_report", "prune_report_folders"]
