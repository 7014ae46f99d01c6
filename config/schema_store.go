package config

// storeKeys are the keys of the broker's durable state (under
// node.data_dir/broker).
var storeKeys = []Key{
	{Name: "store.sync", Kind: Enum, Default: "batch", Enum: []string{"always", "batch", "none"},
		Doc: "Durability of the broker's state (persistent sessions with their subscriptions, queued and in-flight QoS 1/2 messages and delayed wills; retained messages): batch group-commits writes with one fsync, always fsyncs each write, none keeps it in memory only. With batch or always, a QoS 1/2 PUBLISH that was written is acknowledged once durable."},
	{Name: "store.batch_interval", Kind: Duration, Default: "0s",
		Doc: "With store.sync = batch, how long a write waits for others to share its fsync; 0 = only the writes that arrive during an fsync share the next."},
}

// storeGroupTitles names the documentation group of storeKeys.
var storeGroupTitles = map[string]string{
	"store": "Durable broker state",
}
