"""Operations: run and trace ids, logs, the audit log, alert and status hooks."""
