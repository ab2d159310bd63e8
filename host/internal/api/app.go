package api

import "context"

// AppRequest is a call from the sidecar to the app.
type AppRequest struct {
	Method      string
	Path        string // absolute path, may carry a query
	ContentType string
	Headers     map[string]string
	Body        []byte
}

// AppResponse is the app's answer. Body is owned by the caller.
type AppResponse struct {
	Status      int
	ContentType string
	Body        []byte
}

// AppChannel calls the app. Implementations are safe for concurrent use and
// honour ctx's deadline. A transport failure is an error; any HTTP status,
// even 500, is a response.
type AppChannel interface {
	Call(ctx context.Context, req *AppRequest) (*AppResponse, error)
}
