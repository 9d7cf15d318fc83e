//! One JobMaster per job.
