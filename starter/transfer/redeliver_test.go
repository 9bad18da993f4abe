package transfer

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/workflows"
)

func TestRedeliverRequestValidate(t *testing.T) {
	for _, tc := range []struct {
		review string
		req    RedeliverRequest
		want   string // "" valid
	}{
		{"review-x", RedeliverRequest{Operator: "ana", Reason: "r"}, ""},
		{"review-x", RedeliverRequest{Operator: "ana", Reason: "r", Kind: connect.KindDeposit, TransferID: "t1"}, ""},
		{" ", RedeliverRequest{Operator: "ana", Reason: "r"}, "review id: required"},
		{"review-x", RedeliverRequest{Reason: "r"}, "operator: required"},
		{"review-x", RedeliverRequest{Operator: "ana", Reason: "\t"}, "reason: required"},
		{"review-x", RedeliverRequest{Operator: "ana", Reason: "r", TransferID: "t1"}, `kind: must be deposit or withdrawal with a transfer id, got ""`},
		{"review-x", RedeliverRequest{Operator: "ana", Reason: "r", Kind: connect.KindDeposit}, "transfer id: required with kind"},
	} {
		err := tc.req.validate(tc.review)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%+v: %v", tc.req, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidRedelivery) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want ErrInvalidRedelivery naming %q", tc.req, err, tc.want)
		}
	}
}

// TestRedeliverErrorMapsRefusals: each refusal of the review's update becomes its sentinel, message kept; anything
// else stays unwrapped so callers see a Temporal failure as one.
func TestRedeliverErrorMapsRefusals(t *testing.T) {
	app := func(typ string) error {
		return fmt.Errorf("update: %w", temporal.NewApplicationError("the workflow's words", typ))
	}
	for _, tc := range []struct {
		err  error
		want error
	}{
		{app(workflows.ErrTypeAlreadyResolved), ErrReviewClosed},
		{app(workflows.ErrTypeRedeliveryBusy), ErrReviewClosed},
		{app(workflows.ErrTypeNotDeliverable), ErrNotDeliverable},
		{app(workflows.ErrTypeInvalidRedeliver), ErrInvalidRedelivery},
		{app(workflows.ErrTypeTransferClosed), ErrTransferClosed},
		{serviceerror.NewNotFound("workflow execution already completed"), ErrReviewClosed},
	} {
		got := redeliverError("review-x", "deposit-t1", tc.err)
		if !errors.Is(got, tc.want) || !strings.Contains(got.Error(), "review-x") {
			t.Errorf("%v -> %v, want %v", tc.err, got, tc.want)
		}
		if _, isApp := errors.AsType[*temporal.ApplicationError](tc.err); isApp && !strings.Contains(got.Error(), "the workflow's words") {
			t.Errorf("%v -> %v: the workflow's message is lost", tc.err, got)
		}
	}
	other := serviceerror.NewUnavailable("down")
	got := redeliverError("review-x", "deposit-t1", other)
	for _, s := range []error{ErrReviewClosed, ErrNotDeliverable, ErrInvalidRedelivery, ErrTransferClosed, ErrNoTransfer, ErrReviewNotFound} {
		if errors.Is(got, s) {
			t.Fatalf("an unavailable Temporal became %v", s)
		}
	}
	if !errors.Is(got, other) {
		t.Fatalf("an unavailable Temporal lost its cause: %v", got)
	}
}
