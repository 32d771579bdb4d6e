package fhir

import (
	"strconv"
	"strings"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// Issue is one problem with a request, located by a FHIRPath expression.
type Issue struct {
	// Code is the FHIR issue type: invalid, structure, required, value,
	// not-found, not-supported, processing, too-costly, security, ...
	Code string
	// Expression is the FHIRPath of the element at fault, such as
	// "Observation.valueQuantity.code"; empty when the whole body is.
	Expression string
	// Diagnostics says what is wrong in words. It never echoes free text
	// or values of the request (they may be PHI).
	Diagnostics string
}

// Error is a request rejected with an HTTP status and the issues that
// explain it, answered as an OperationOutcome.
type Error struct {
	Status int
	Issues []Issue
}

func (e *Error) Error() string {
	parts := make([]string, len(e.Issues))
	for i, is := range e.Issues {
		parts[i] = is.Expression + ": " + is.Diagnostics
	}
	return "fhir: " + strings.Join(parts, "; ")
}

// Invalid is a 422: the resource parsed but breaks a rule of the profile or
// of Tend.
func Invalid(issues ...Issue) *Error { return &Error{Status: statusUnprocessable, Issues: issues} }

// Malformed is a 400: the body could not be parsed as the resource.
func Malformed(issues ...Issue) *Error { return &Error{Status: statusBadRequest, Issues: issues} }

// issueTypes are the IssueType codes Tend uses.
var issueTypes = map[string]r4.IssueType{
	"invalid":       r4.IssueTypeInvalid,
	"structure":     r4.IssueTypeStructure,
	"required":      r4.IssueTypeRequired,
	"value":         r4.IssueTypeValue,
	"not-found":     r4.IssueTypeNotFound,
	"not-supported": r4.IssueTypeNotSupported,
	"processing":    r4.IssueTypeProcessing,
	"too-costly":    r4.IssueTypeTooCostly,
	"security":      r4.IssueTypeSecurity,
	"login":         r4.IssueTypeLogin,
	"forbidden":     r4.IssueTypeForbidden,
	"throttled":     r4.IssueTypeThrottled,
	"exception":     r4.IssueTypeException,
	"conflict":      r4.IssueTypeConflict,
	"duplicate":     r4.IssueTypeDuplicate,
	"informational": r4.IssueTypeInformational,
	"business-rule": r4.IssueTypeBusinessRule,
	"code-invalid":  r4.IssueTypeCodeInvalid,
	"invariant":     r4.IssueTypeInvariant,
}

// OperationOutcome builds the resource for issues (all errors, except the
// informational code).
func OperationOutcome(issues ...Issue) r4.OperationOutcome {
	oo := r4.OperationOutcome{}
	for _, is := range issues {
		t, ok := issueTypes[is.Code]
		if !ok {
			t = r4.IssueTypeProcessing
		}
		sev := r4.IssueSeverityError
		if t == r4.IssueTypeInformational {
			sev = r4.IssueSeverityInformation
		}
		x := r4.OperationOutcomeIssue{Severity: sev, Code: t}
		if is.Diagnostics != "" {
			x.Diagnostics = ptr(is.Diagnostics)
		}
		if is.Expression != "" {
			x.Expression = []string{is.Expression}
		}
		oo.Issue = append(oo.Issue, x)
	}
	return oo
}

// prefix rewrites the issues' expressions to sit under p, such as
// "Bundle.entry[3].resource".
func prefix(issues []Issue, from, to string) []Issue {
	out := make([]Issue, len(issues))
	for i, is := range issues {
		if rest, ok := strings.CutPrefix(is.Expression, from); ok {
			is.Expression = to + rest
		}
		out[i] = is
	}
	return out
}

// HTTP statuses of FHIR errors, spelled out so that this package needs no
// net/http (it stays pure).
const (
	statusBadRequest       = 400
	statusMethodNotAllowed = 405
	statusTooLarge         = 413
	statusUnprocessable    = 422
)

var statusTexts = map[int]string{200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
	404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 413: "Request Entity Too Large", 422: "Unprocessable Entity",
	429: "Too Many Requests", 500: "Internal Server Error"}

// statusLine is a Bundle entry's response.status, such as "201 Created".
func statusLine(code int) string {
	if t, ok := statusTexts[code]; ok {
		return strconv.Itoa(code) + " " + t
	}
	return strconv.Itoa(code)
}
