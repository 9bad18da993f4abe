package workflows

// Registry is what workers and replayers both offer for registering workflows.
type Registry interface {
	RegisterWorkflow(w any)
}

// Register registers every connectflow workflow, so workers and replay tests cannot drift apart.
func Register(r Registry) {
	r.RegisterWorkflow(TransferWorkflow)
	r.RegisterWorkflow(OnboardingWorkflow)
	r.RegisterWorkflow(ReviewWorkflow)
	r.RegisterWorkflow(ReconcileWorkflow)
	r.RegisterWorkflow(ReconcileCursorWorkflow)
}
