package redis

import goredis "github.com/redis/go-redis/v9"

var _ = goredis.NewClient
