package main

import (
	"github.com/wapr-dev/wapr/builtin/bindings/aws/s3"
	"github.com/wapr-dev/wapr/builtin/bindings/cron"
	httpbinding "github.com/wapr-dev/wapr/builtin/bindings/http"
	kafkabinding "github.com/wapr-dev/wapr/builtin/bindings/kafka"
	configredis "github.com/wapr-dev/wapr/builtin/configuration/redis"
	lockredis "github.com/wapr-dev/wapr/builtin/lock/redis"
	"github.com/wapr-dev/wapr/builtin/nameresolution/kubernetes"
	"github.com/wapr-dev/wapr/builtin/nameresolution/mdns"
	"github.com/wapr-dev/wapr/builtin/nameresolution/static"
	"github.com/wapr-dev/wapr/builtin/pubsub/kafka"
	pubsubmemory "github.com/wapr-dev/wapr/builtin/pubsub/memory"
	pubsubredis "github.com/wapr-dev/wapr/builtin/pubsub/redis"
	secretenv "github.com/wapr-dev/wapr/builtin/secretstores/local/env"
	secretfile "github.com/wapr-dev/wapr/builtin/secretstores/local/file"
	"github.com/wapr-dev/wapr/builtin/state/aws/dynamodb"
	statememory "github.com/wapr-dev/wapr/builtin/state/memory"
	stateredis "github.com/wapr-dev/wapr/builtin/state/redis"
	"github.com/wapr-dev/wapr/host"
	"github.com/wapr-dev/wapr/host/component"
	"github.com/wapr-dev/wapr/host/component/configuration"
	"github.com/wapr-dev/wapr/host/component/lock"
	"github.com/wapr-dev/wapr/host/component/pubsub"
	"github.com/wapr-dev/wapr/host/component/secretstores"
	"github.com/wapr-dev/wapr/host/component/state"
)

// builtins returns the registry of every native driver compiled into wapr.
// This is the one place that wires them; tests build their own registries.
func builtins() *host.Registry {
	r := host.NewRegistry()
	r.RegisterStateStore(host.InMemoryStateType, func() state.Store { return statememory.New() })
	r.RegisterPubSub(host.InMemoryPubSubType, func() pubsub.PubSub { return pubsubmemory.New() })
	r.RegisterStateStore("state.redis", func() state.Store { return stateredis.New() })
	r.RegisterPubSub("pubsub.redis", func() pubsub.PubSub { return pubsubredis.New() })
	r.RegisterStateStore("state.aws.dynamodb", func() state.Store { return dynamodb.New() })
	r.RegisterBinding("bindings.http", func() component.Lifecycle { return httpbinding.New() })
	r.RegisterBinding("bindings.aws.s3", func() component.Lifecycle { return s3.New() })
	r.RegisterPubSub("pubsub.kafka", func() pubsub.PubSub { return kafka.New() })
	r.RegisterBinding("bindings.kafka", func() component.Lifecycle { return kafkabinding.New() })
	r.RegisterBinding("bindings.cron", func() component.Lifecycle { return cron.New() })
	r.RegisterConfigurationStore("configuration.redis", func() configuration.Store { return configredis.New() })
	r.RegisterLockStore("lock.redis", func() lock.Store { return lockredis.New() })
	r.RegisterSecretStore("secretstores.local.file", func() secretstores.Store { return secretfile.New() })
	r.RegisterSecretStore("secretstores.local.env", func() secretstores.Store { return secretenv.New() })
	r.RegisterNameResolver("mdns", mdns.New)
	r.RegisterNameResolver("kubernetes", kubernetes.New)
	r.RegisterNameResolver("static", static.New)
	return r
}
