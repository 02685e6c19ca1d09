package ingest

import (
	"context"
	"errors"
	"net/http"

	"github.com/recledger/recledger/ledger"
)

// Reasons the HTTP layer answers with, beside the domain's (ledger.Reason*:
// invalid_input, unknown_user, unknown_command, and the command results').
const (
	reasonInvalidConfig  = "invalid_config"
	reasonNotFound       = "not_found"
	reasonConflict       = "conflict"
	reasonAlreadySealed  = "already_sealed"
	reasonFutureDay      = "future_day"
	reasonBeforeContacts = "before_contacts"
	reasonTooLarge       = "too_large"
	reasonUnauthorized   = "unauthorized"
	reasonForbidden      = "forbidden"
	reasonUnavailable    = "unavailable"
	reasonMethod         = "method_not_allowed"
	reasonInternal       = "internal"
	reasonLedgerCorrupt  = "ledger_corrupt"
	reasonTimeout        = "timeout"
)

// apiError is an error of the HTTP layer: a machine reason (its status is
// statusOfReason's), a sentence for people and optional extra fields of
// the JSON body.
type apiError struct {
	Reason  string
	Message string
	Fields  map[string]any
	inURI   bool // too_large: the query string, not the body (414)
}

func (e *apiError) Error() string { return e.Reason + ": " + e.Message }

func newError(reason, message string) *apiError {
	return &apiError{Reason: reason, Message: message}
}

// with adds a field to the error body.
func (e *apiError) with(key string, v any) *apiError {
	if e.Fields == nil {
		e.Fields = map[string]any{}
	}
	e.Fields[key] = v
	return e
}

// statusOf is the one place errors become HTTP status codes.
func statusOf(err error) int {
	var ae *apiError
	var fe *ledger.FieldError
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &ae):
		return statusOfReason(ae.Reason, ae.inURI)
	case errors.As(err, &fe), errors.Is(err, ledger.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ledger.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ledger.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ledger.ErrClosed), errors.Is(err, ledger.ErrUnavailable),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// statusOfReason is the status of each reason word the HTTP layer answers
// with (docs/clients.md lists them); too_large is 414 for a query string
// (inURI), 413 for a body.
func statusOfReason(reason string, inURI bool) int {
	switch reason {
	case ledger.ReasonInvalidInput, reasonInvalidConfig:
		return http.StatusBadRequest
	case reasonUnauthorized:
		return http.StatusUnauthorized
	case reasonForbidden:
		return http.StatusForbidden
	case reasonNotFound, ledger.ReasonUnknownCommand, ledger.ReasonUnknownUser:
		return http.StatusNotFound
	case reasonMethod:
		return http.StatusMethodNotAllowed
	case reasonTimeout:
		return http.StatusRequestTimeout
	case reasonConflict, reasonAlreadySealed, reasonFutureDay, reasonBeforeContacts:
		return http.StatusConflict
	case reasonTooLarge:
		if inURI {
			return http.StatusRequestURITooLong
		}
		return http.StatusRequestEntityTooLarge
	case reasonUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// reasonOf is the machine word of an error body, matching statusOf.
func reasonOf(err error) string {
	var ae *apiError
	var fe *ledger.FieldError
	switch {
	case errors.As(err, &ae):
		return ae.Reason
	case errors.As(err, &fe), errors.Is(err, ledger.ErrInvalid):
		return ledger.ReasonInvalidInput
	case errors.Is(err, ledger.ErrNotFound):
		return reasonNotFound
	case errors.Is(err, ledger.ErrConflict):
		return reasonConflict
	case statusOf(err) == http.StatusServiceUnavailable:
		return reasonUnavailable
	case errors.Is(err, ledger.ErrCorrupt):
		return reasonLedgerCorrupt
	}
	return reasonInternal
}

// statusOfResult maps a command's outcome to its HTTP status (API.md §2):
// applied and no_effect 200, unsupported 409, rejected 404 for an unknown
// user and 400 otherwise.
func statusOfResult(res ledger.CommandResult) int {
	switch res.Outcome {
	case ledger.OutcomeApplied, ledger.OutcomeNoEffect:
		return http.StatusOK
	case ledger.OutcomeUnsupported:
		return http.StatusConflict
	case ledger.OutcomeRejected:
		if res.Reason == ledger.ReasonUnknownUser {
			return http.StatusNotFound
		}
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// errorBody is the JSON of every error answer: reason, message and the
// error's extra fields (a FieldError adds "field").
func (s *Server) errorBody(err error) map[string]any {
	body := map[string]any{"reason": reasonOf(err), "message": err.Error()}
	var ae *apiError
	var fe *ledger.FieldError
	if errors.As(err, &ae) {
		body["message"] = ae.Message
		for k, v := range ae.Fields {
			body[k] = v
		}
	} else if errors.As(err, &fe) {
		body["field"] = fe.Field
		body["message"] = fe.Message
	} else if m := unavailableMessage(err); m != "" {
		body["message"] = m
	} else if reasonOf(err) == reasonLedgerCorrupt {
		body["message"] = err.Error() + corruptAdvice
	}
	// An error may quote what it refused (a member's name, a number out of
	// range): a card number in it is masked as it would be in the ledger,
	// and a bearer token redacted (a walk's signal of type "<a token>"
	// had it quoted back).
	for _, k := range []string{"message", "field"} {
		if v, ok := body[k].(string); ok {
			v, _ = maskCards(v)
			body[k] = s.tokens.redact(v, nil)
		}
	}
	return body
}

// maskFieldErr is err with a card number in its field or message masked,
// when it is a field error (a configuration's: quoted in answers and in
// serve's refusal of a --config file).
func maskFieldErr(err error) error {
	var fe *ledger.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	f, okF := maskCards(fe.Field)
	m, okM := maskCards(fe.Message)
	if !okF && !okM {
		return err
	}
	return &ledger.FieldError{Field: f, Message: m}
}

// unavailableMessage is what a client is told when the ledger takes no
// writes: what to do, not the store's error (a file path, an errno),
// which the log and /readyz carry.
func unavailableMessage(err error) string {
	switch {
	case errors.Is(err, ledger.ErrClosed):
		return "the server is stopping: nothing was recorded; send it again once the server is back"
	case errors.Is(err, ledger.ErrUnavailable):
		return "the ledger cannot take writes now (GET /readyz says why): nothing was recorded; send it again later"
	}
	return ""
}

// corruptAdvice follows a damaged file's error, in answers and on
// /readyz: what the administrator runs to learn what is damaged and how to
// mend it.
const corruptAdvice = "; a part of the ledger file is damaged: stop the server and run `recledger verify --data DIR`, " +
	"which names it and the way out (docs/replay.md, \"Verify and restore\")"

// asFieldError finds a *ledger.FieldError in err's chain.
func asFieldError(err error, fe **ledger.FieldError) bool { return errors.As(err, fe) }
