// Package lambdaevent turns what reaches a Lambda function — API Gateway
// HTTP API (payload 2.0) and REST API (1.0) events, EventBridge rule and
// Scheduler events, or direct JSON — into calls of transport-neutral
// handlers, and their results into what Lambda returns.
package lambdaevent

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/caio-licensing/caio-licensing/shared/httpapi"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// Kind is the shape of an invocation payload.
type Kind string

// Kinds of payload.
const (
	HTTPv2      Kind = "apigateway-http-v2"
	RESTv1      Kind = "apigateway-rest-v1"
	EventBridge Kind = "eventbridge-rule"
	Scheduler   Kind = "eventbridge-scheduler"
	Direct      Kind = "direct"
)

// probe holds the fields that tell the shapes apart.
type probe struct {
	Version        string          `json:"version"`
	RouteKey       string          `json:"routeKey"`
	HTTPMethod     string          `json:"httpMethod"`
	RequestContext json.RawMessage `json:"requestContext"`
	Source         string          `json:"source"`
	DetailType     string          `json:"detail-type"`
}

// Classify tells what kind of payload arrived. Anything but a JSON object is an error.
func Classify(payload []byte) (Kind, error) {
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return "", licensing.Errorf(licensing.CodeBadRequest, "event is not a JSON object")
	}
	var p probe
	if err := json.Unmarshal(trimmed, &p); err != nil {
		return "", licensing.Errorf(licensing.CodeBadRequest, "event is not valid JSON: %s", jsonProblem(err))
	}
	switch {
	case p.Version == "2.0" && p.RouteKey != "" && len(p.RequestContext) > 0:
		return HTTPv2, nil
	case p.HTTPMethod != "" && len(p.RequestContext) > 0:
		return RESTv1, nil
	case p.Source == "aws.events" && p.DetailType != "":
		return EventBridge, nil
	case p.Source == "aws.scheduler":
		return Scheduler, nil
	}
	return Direct, nil
}

func jsonProblem(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return fmt.Sprintf("syntax error at byte %d", e.Offset)
	case *json.UnmarshalTypeError:
		return fmt.Sprintf("field %s must be a %s", e.Field, e.Type)
	}
	return "cannot decode"
}

func requestID(ctx context.Context, fromEvent string) string {
	if fromEvent != "" {
		return fromEvent
	}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		return lc.AwsRequestID
	}
	return ""
}

// Handler is a Lambda handler that receives the raw payload, so that any
// payload, even one that is not JSON, reaches our own checks and gets a
// clear error. It implements lambda.Handler: start it with lambda.StartHandler.
type Handler func(ctx context.Context, payload []byte) (any, error)

// Invoke implements lambda.Handler.
func (h Handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	v, err := h(ctx, payload)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// HTTP returns the Lambda handler of the activation API: it accepts API
// Gateway HTTP API and REST API events and answers in the same version.
func HTTP(api *httpapi.API, log *slog.Logger) Handler {
	return func(ctx context.Context, payload []byte) (any, error) {
		kind, err := Classify(payload)
		if err != nil {
			return nil, refuseEvent(ctx, log, err)
		}
		switch kind {
		case HTTPv2:
			var ev events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(payload, &ev); err != nil {
				return nil, refuseEvent(ctx, log, licensing.Errorf(licensing.CodeBadRequest, "malformed API Gateway HTTP API event: %s", jsonProblem(err)))
			}
			path := ev.RawPath
			if path == "" {
				path = ev.RequestContext.HTTP.Path
			}
			h := http.Header{}
			for k, v := range ev.Headers {
				h.Set(k, v)
			}
			req := httpapi.Request{
				Method: ev.RequestContext.HTTP.Method, Path: path, Header: h,
				SourceIP: ev.RequestContext.HTTP.SourceIP, RequestID: requestID(ctx, ev.RequestContext.RequestID),
			}
			return v2Response(serve(ctx, api, req, ev.Body, ev.IsBase64Encoded)), nil
		case RESTv1:
			var ev events.APIGatewayProxyRequest
			if err := json.Unmarshal(payload, &ev); err != nil {
				return nil, refuseEvent(ctx, log, licensing.Errorf(licensing.CodeBadRequest, "malformed API Gateway REST API event: %s", jsonProblem(err)))
			}
			h := http.Header{}
			for k, vs := range ev.MultiValueHeaders {
				for _, v := range vs {
					h.Add(k, v)
				}
			}
			for k, v := range ev.Headers {
				if h.Get(k) == "" {
					h.Set(k, v)
				}
			}
			req := httpapi.Request{
				Method: ev.HTTPMethod, Path: ev.Path, Header: h,
				SourceIP: ev.RequestContext.Identity.SourceIP, RequestID: requestID(ctx, ev.RequestContext.RequestID),
			}
			return v1Response(serve(ctx, api, req, ev.Body, ev.IsBase64Encoded)), nil
		}
		return nil, refuseEvent(ctx, log, licensing.Errorf(licensing.CodeBadRequest,
			"the activate function takes API Gateway events (HTTP API 2.0 or REST 1.0), not a %s event", kind))
	}
}

// serve decodes the event's body and hands the request to the API.
func serve(ctx context.Context, api *httpapi.API, req httpapi.Request, body string, isBase64 bool) httpapi.Response {
	if !isBase64 {
		req.Body = []byte(body)
		return api.Serve(ctx, req)
	}
	raw, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		return api.Reject(ctx, req, licensing.Errorf(licensing.CodeBadRequest, "request body is marked base64 but does not decode"))
	}
	req.Body = raw
	return api.Serve(ctx, req)
}

func flatHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		if len(v) > 0 {
			out[k] = v[0]
		}
	}
	return out
}

func v2Response(r httpapi.Response) events.APIGatewayV2HTTPResponse {
	return events.APIGatewayV2HTTPResponse{StatusCode: r.Status, Headers: flatHeaders(r.Header), Body: string(r.Body)}
}

func v1Response(r httpapi.Response) events.APIGatewayProxyResponse {
	return events.APIGatewayProxyResponse{StatusCode: r.Status, Headers: flatHeaders(r.Header), Body: string(r.Body)}
}

// EventError is a refused invocation; Lambda reports it as the error type.
type EventError struct {
	Code    licensing.Code
	Message string
}

func (e *EventError) Error() string { return string(e.Code) + ": " + e.Message }

// refusal logs a refused invocation and says why, for the caller.
func refusal(ctx context.Context, log *slog.Logger, err error, attrs ...slog.Attr) Refusal {
	r := Refusal{Code: licensing.ErrorCode(err), Detail: licensing.ErrorMessage(err)}
	log.LogAttrs(ctx, slog.LevelWarn, "invocation refused", append([]slog.Attr{slog.String("request_id", requestID(ctx, "")),
		slog.String("code", string(r.Code)), slog.String("detail", r.Detail)}, attrs...)...)
	return r
}

// refuseEvent refuses an event the activate function does not take, as a
// Lambda error (API Gateway would otherwise see a malformed response).
func refuseEvent(ctx context.Context, log *slog.Logger, err error) error {
	r := refusal(ctx, log, err)
	return &EventError{Code: r.Code, Message: r.Detail}
}

// Operation is a handler of an operator function: it receives the direct
// JSON input (an empty object for scheduled events without input).
type Operation func(ctx context.Context, input json.RawMessage) (any, error)

// Refusal is what an operator function returns when it refuses a request:
// a result, not a runtime failure, so callers read why.
type Refusal struct {
	Code   licensing.Code `json:"code"`
	Detail string         `json:"detail"`
}

// Operator returns the Lambda handler of an operator function. accept
// lists the payload kinds it takes besides direct JSON. Refusals (bad
// input, unknown customer, ...) come back as a Refusal; failures of the
// system (database, secret) as a Lambda error, so that retries, alarms
// and on-failure destinations see them.
func Operator(name string, log *slog.Logger, op Operation, accept ...Kind) Handler {
	accepted := map[Kind]bool{Direct: true}
	for _, k := range accept {
		accepted[k] = true
	}
	return func(ctx context.Context, payload []byte) (any, error) {
		kind, err := Classify(payload)
		if err == nil && !accepted[kind] {
			err = licensing.Errorf(licensing.CodeBadRequest, "the %s function does not take %s events: invoke it with its JSON input (see infra/events/)", name, kind)
		}
		if err != nil {
			return refusal(ctx, log, err), nil
		}
		input := payload
		if kind == EventBridge || kind == Scheduler {
			input = json.RawMessage("{}")
		}
		result, err := op(ctx, input)
		event := slog.String("event", string(kind))
		code := licensing.ErrorCode(err)
		switch {
		case err == nil:
			log.LogAttrs(ctx, slog.LevelInfo, "invocation", slog.String("request_id", requestID(ctx, "")), event, slog.String("code", "OK"))
			return result, nil
		case isRefusal(code):
			return refusal(ctx, log, err, event), nil
		default:
			log.LogAttrs(ctx, slog.LevelError, "invocation failed", slog.String("request_id", requestID(ctx, "")), event,
				slog.String("code", string(code)), slog.String("error", err.Error()))
			return nil, &EventError{Code: code, Message: licensing.ErrorMessage(err)}
		}
	}
}

// isRefusal tells a caller's mistake from a failure of the system.
func isRefusal(code licensing.Code) bool {
	switch code {
	case licensing.CodeBadRequest, licensing.CodeNotFound, licensing.CodeAlreadyExists, licensing.CodeInvalidKey,
		licensing.CodeExpired, licensing.CodeSuspended, licensing.CodeRevoked, licensing.CodeTooManyInstances,
		licensing.CodeInstanceIDRequired:
		return true
	}
	return false
}
