package workflows

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/connectflow/connectflow/activities"
)

// OnboardingRequest asks for a KYC onboarding token for one customer.
type OnboardingRequest struct {
	Email string `json:"email"`
	Phone string `json:"phone,omitempty"`
}

// OnboardingActivityOptions: Zero Hash allows 60 s of clock skew, so a short attempt and patient retries.
var OnboardingActivityOptions = workflow.ActivityOptions{
	StartToCloseTimeout:    20 * time.Second,
	ScheduleToCloseTimeout: 5 * time.Minute,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    30 * time.Second,
	},
}

// OnboardingWorkflow issues one onboarding token through a signed, retried, audited activity call.
func OnboardingWorkflow(ctx workflow.Context, req OnboardingRequest) (activities.OnboardingResult, error) {
	if req.Email == "" || !strings.Contains(req.Email, "@") {
		return activities.OnboardingResult{}, temporal.NewNonRetryableApplicationError("invalid onboarding request: email: must be an email address", "InvalidOnboardingInput", nil)
	}
	// One X-REQUEST-ID for every attempt, recorded in history so a replay or retry reuses it.
	var requestID string
	if err := workflow.SideEffect(ctx, func(workflow.Context) any { return uuid.NewString() }).Get(&requestID); err != nil {
		return activities.OnboardingResult{}, fmt.Errorf("choose request id: %w", err)
	}
	var out activities.OnboardingResult
	actx := workflow.WithActivityOptions(ctx, OnboardingActivityOptions)
	in := activities.OnboardingInput{RequestID: requestID, Email: req.Email, Phone: req.Phone}
	if err := workflow.ExecuteActivity(actx, act.IssueOnboardingToken, in).Get(ctx, &out); err != nil {
		return activities.OnboardingResult{}, err
	}
	return out, nil
}
