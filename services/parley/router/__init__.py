"""The router: escalation policy, priority, team queues, assignment to agents, SLAs and staffing."""
