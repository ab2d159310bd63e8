package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/wapr-dev/wapr/host/component/configuration"
)

// configurationUpdateTimeout bounds one POST of a configuration update to
// the app.
const configurationUpdateTimeout = 30 * time.Second

// ConfigurationStore is a configuration store as the API serves it.
type ConfigurationStore struct {
	Info
	Store configuration.Store
}

// ConfigurationItem is one item in answers and updates (Dapr's JSON).
type ConfigurationItem struct {
	Value    string            `json:"value,omitempty"`
	Version  string            `json:"version,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// configurationUpdate is the body POSTed to the app for a change.
type configurationUpdate struct {
	ID    string                        `json:"id"`
	Items map[string]*ConfigurationItem `json:"items"`
}

func configurationItems(in map[string]*configuration.Item) map[string]*ConfigurationItem {
	out := make(map[string]*ConfigurationItem, len(in))
	for k, it := range in {
		if it == nil {
			it = &configuration.Item{}
		}
		out[k] = &ConfigurationItem{Value: it.Value, Version: it.Version, Metadata: it.Metadata}
	}
	return out
}

// configurationStore finds a store and admits one call on it: the caller
// must call s.Gate.Leave when done.
func (a *API) configurationStore(name string) (*ConfigurationStore, *Error) {
	for {
		snap := a.snapshot.Load()
		if len(snap.Configurations) == 0 {
			return nil, errorf(CodeConfigurationStoreNotConfigured, nil, "configuration stores not configured")
		}
		s, ok := snap.Configurations[name]
		if !ok {
			return nil, errorf(CodeConfigurationStoreNotFound, nil, "configuration store %s not found", name)
		}
		if s.Gate.Enter() {
			return s, nil
		}
	}
}

// GetConfigurationRequest asks for items; no keys means every item.
type GetConfigurationRequest struct {
	Store    string
	Keys     []string
	Metadata map[string]string
}

// GetConfiguration returns the items found, by key; an empty map when none.
func (a *API) GetConfiguration(ctx context.Context, in *GetConfigurationRequest) (map[string]*ConfigurationItem, error) {
	s, e := a.configurationStore(in.Store)
	if e != nil {
		return nil, e
	}
	defer s.Gate.Leave()
	span := a.componentSpan(ctx, "configuration", "Get", &s.Info)
	items, err := s.Store.Get(ctx, &configuration.GetRequest{Keys: in.Keys, Metadata: in.Metadata})
	endComponent(span, err)
	if err != nil {
		return nil, errorf(CodeConfigurationGet, err, "failed to get %v from Configuration store %s: %v", keysText(in.Keys), in.Store, err)
	}
	return configurationItems(items), nil
}

// keysText renders keys as daprd's messages do (Go's %v of a slice).
func keysText(keys []string) string {
	if keys == nil {
		keys = []string{}
	}
	return fmt.Sprint(keys)
}

// SubscribeConfigurationRequest asks to watch items; no keys means all.
type SubscribeConfigurationRequest struct {
	Store    string
	Keys     []string
	Metadata map[string]string
}

// SubscribeConfiguration starts watching items and returns the
// subscription's id. Every change is POSTed to the app at
// /configuration/{store}/{key}, once per changed key, as daprd does.
func (a *API) SubscribeConfiguration(ctx context.Context, in *SubscribeConfigurationRequest) (string, error) {
	store := in.Store
	_, id, err := a.subscribeConfiguration(ctx, in, true,
		func(ctx context.Context, u *configuration.Update) error { return a.deliverConfiguration(ctx, store, u) })
	return id, err
}

// ConfigurationUpdateFunc receives the changes of a subscription made with
// SubscribeConfigurationFunc: the subscription's id and the changed items
// (a deleted key has an empty value and version). It is called from one
// goroutine per subscription, never concurrently with itself; ctx ends
// when the subscription does. The items are the callee's to keep.
type ConfigurationUpdateFunc func(ctx context.Context, id string, items map[string]*ConfigurationItem) error

// SubscribeConfigurationFunc starts watching items as SubscribeConfiguration
// does, but hands every change to fn instead of POSTing it to the app, so
// it needs no app channel: the gRPC API streams the changes to its caller.
// It returns the subscription's id and stop, which ends the subscription on
// the store instance that took it (still the right one after a reload
// replaced the store in the snapshot); once stop returns, fn is not called
// again. ctx bounds the subscribing only.
func (a *API) SubscribeConfigurationFunc(ctx context.Context, in *SubscribeConfigurationRequest, fn ConfigurationUpdateFunc) (id string, stop func(context.Context) error, err error) {
	s, id, err := a.subscribeConfiguration(ctx, in, false,
		func(ctx context.Context, u *configuration.Update) error {
			return fn(ctx, u.ID, configurationItems(u.Items))
		})
	if err != nil {
		return "", nil, err
	}
	stop = func(ctx context.Context) error {
		if err := s.Store.Unsubscribe(ctx, id); err != nil {
			return errorf(CodeConfigurationUnsubscribe, err, "failed to unsubscribe to configuration request %s: %v", id, err)
		}
		return nil
	}
	return id, stop, nil
}

// subscribeConfiguration checks a subscription as daprd does (stores
// configured, the store known, then, when the changes go to the app, an
// app channel) and subscribes h on the store. It returns the store that
// took the subscription.
func (a *API) subscribeConfiguration(ctx context.Context, in *SubscribeConfigurationRequest, toApp bool, h configuration.UpdateHandler) (*ConfigurationStore, string, error) {
	s, e := a.configurationStore(in.Store)
	if e != nil {
		return nil, "", e
	}
	defer s.Gate.Leave()
	if toApp && a.appChannel() == nil {
		return nil, "", errorf(CodeAppChannelNil, nil, "app channel is not initialized. cannot subscribe to configuration updates")
	}
	id, err := s.Store.Subscribe(ctx, &configuration.SubscribeRequest{Keys: in.Keys, Metadata: in.Metadata}, h)
	if err != nil {
		return nil, "", errorf(CodeConfigurationSubscribe, err, "failed to subscribe %v from Configuration store %s: %v", keysText(in.Keys), in.Store, err)
	}
	return s, id, nil
}

// deliverConfiguration POSTs an update to the app, once per changed key,
// each time with the whole update as the body. A failure is logged; the
// subscription goes on.
func (a *API) deliverConfiguration(ctx context.Context, store string, u *configuration.Update) error {
	app := a.appChannel()
	if app == nil {
		return fmt.Errorf("no app channel to send the configuration update from %s", store)
	}
	body, err := json.Marshal(configurationUpdate{ID: u.ID, Items: configurationItems(u.Items)})
	if err != nil {
		return err
	}
	var failed error
	for key := range u.Items {
		path := (&url.URL{Path: "/configuration/" + store + "/" + key}).EscapedPath()
		callCtx, cancel := context.WithTimeout(ctx, configurationUpdateTimeout)
		res, err := app.Call(callCtx, &AppRequest{Call: AppCallConfigurationUpdate, Method: "POST", Path: path, ContentType: "application/json", Body: body})
		cancel()
		switch {
		case err != nil:
			failed = fmt.Errorf("sending configuration item %s of %s to the app: %w", key, store, err)
		case res.Status != 200:
			failed = fmt.Errorf("sending configuration item %s of %s to the app: status %d", key, store, res.Status)
		default:
			continue
		}
		a.logger().Error("configuration update not delivered", "store", store, "key", key, "subscription", u.ID, "error", failed)
	}
	return failed
}

// UnsubscribeConfigurationRequest ends a subscription.
type UnsubscribeConfigurationRequest struct {
	Store string
	ID    string
}

// UnsubscribeConfiguration ends a subscription; no update is sent for it
// once it returns.
func (a *API) UnsubscribeConfiguration(ctx context.Context, in *UnsubscribeConfigurationRequest) error {
	s, e := a.configurationStore(in.Store)
	if e != nil {
		return e
	}
	defer s.Gate.Leave()
	if err := s.Store.Unsubscribe(ctx, in.ID); err != nil {
		return errorf(CodeConfigurationUnsubscribe, err, "failed to unsubscribe to configuration request %s: %v", in.ID, err)
	}
	return nil
}
