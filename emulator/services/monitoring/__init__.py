"""Cloud Monitoring: metrics, alert policies and notification channels (`service`), dashboards (`dashboards`), the
monitoring filter language (`filter`) and ListTimeSeries' aggregation (`aggregation`)."""
