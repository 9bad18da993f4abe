package transferapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"unicode"

	"github.com/gin-gonic/gin"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/starter/transfer"
)

// PathReviews is the base of the review routes; POST PathReviews/{review_id}/redeliver redelivers a review's event.
const (
	PathReviews       = "/v1/reviews"
	suffixRedeliver   = "/:review_id/redeliver"
	reviewIDParameter = "review_id"
	reviewIDPrefix    = "review-"
	maxReviewIDLength = 512
)

// RedeliverRequest is the body of POST /v1/reviews/{review_id}/redeliver; the operator is the authenticated caller.
// Kind and transfer_id, both or neither, name the transfer to deliver to; neither (nil) means the event's own (the
// one the bridge routes it to now). A field that is present must be valid: "" is not absent.
type RedeliverRequest struct {
	Reason     string        `json:"reason"`
	Kind       *connect.Kind `json:"kind,omitempty"`
	TransferID *string       `json:"transfer_id,omitempty"`
}

// redeliver delivers the event held in a review to its transfer (transfer.Client.Redeliver), for an operator.
func (s *Server) redeliver(c *gin.Context, caller Caller) (int, any, *Problem) {
	id := c.Param(reviewIDParameter)
	if !validReviewID(id) {
		return 0, nil, newProblem(TypeReviewNotFound, "a review id is review-<event key>, as the review's workflow id")
	}
	c.Set(keyWorkflowID, id)
	var req RedeliverRequest
	if p := readJSON(c.Request, c.Writer, s.maxBody, &req); p != nil {
		return 0, nil, p
	}
	errs := reasonError(req.Reason)
	var kind connect.Kind
	var transferID string
	switch {
	case req.Kind == nil && req.TransferID != nil:
		errs = append(errs, FieldError{Field: "kind", Detail: "required with transfer_id"})
	case req.Kind != nil && !req.Kind.Valid():
		errs = append(errs, FieldError{Field: "kind", Detail: "must be deposit or withdrawal"})
	case req.Kind != nil:
		kind = *req.Kind
	}
	switch {
	case req.TransferID == nil && req.Kind != nil:
		errs = append(errs, FieldError{Field: "transfer_id", Detail: "required with kind"})
	case req.TransferID != nil && !transferIDPattern.MatchString(*req.TransferID):
		errs = append(errs, FieldError{Field: "transfer_id", Detail: "must be " + transferIDRule})
	case req.TransferID != nil:
		transferID = *req.TransferID
	}
	if len(errs) > 0 {
		return 0, nil, invalid(errs...)
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.timeout)
	defer cancel()
	out, err := s.transfers.Redeliver(ctx, id, transfer.RedeliverRequest{Operator: caller.Name, Reason: req.Reason,
		Kind: kind, TransferID: transferID})
	switch {
	case err == nil:
		return http.StatusOK, out, nil
	case errors.Is(err, transfer.ErrReviewNotFound):
		return 0, nil, newProblem(TypeReviewNotFound, err.Error())
	case errors.Is(err, transfer.ErrReviewClosed):
		return 0, nil, newProblem(TypeReviewClosed, err.Error())
	case errors.Is(err, transfer.ErrNotDeliverable):
		return 0, nil, newProblem(TypeNotDeliverable, err.Error())
	case errors.Is(err, transfer.ErrNoTransfer) && transferID != "":
		return 0, nil, newProblem(TypeTransferNotFound, err.Error())
	case errors.Is(err, transfer.ErrNoTransfer):
		return 0, nil, newProblem(TypeNotDeliverable, err.Error())
	case errors.Is(err, transfer.ErrTransferClosed):
		return 0, nil, newProblem(TypeTransferClosed, err.Error())
	case errors.Is(err, transfer.ErrInvalidRedelivery):
		return 0, nil, invalid(FieldError{Field: "body", Detail: err.Error()})
	}
	return 0, nil, s.temporalProblem(c, err, "redeliver "+id)
}

// validReviewID: a review workflow id (workflows.ReviewWorkflowID: "review-" and an event key), printable, no slash.
func validReviewID(id string) bool {
	if !strings.HasPrefix(id, reviewIDPrefix) || len(id) == len(reviewIDPrefix) || len(id) > maxReviewIDLength {
		return false
	}
	for _, r := range id {
		if r == '/' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
