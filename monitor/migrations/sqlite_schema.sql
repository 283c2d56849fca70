-- monitor's SQLite schema at revision 0010

CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

CREATE TABLE api_tokens (
	id INTEGER NOT NULL, 
	name VARCHAR(64) NOT NULL, 
	token_hash VARCHAR(64) NOT NULL, 
	read_only BOOLEAN NOT NULL, 
	created_at DATETIME, 
	last_used_at DATETIME, 
	PRIMARY KEY (id), 
	UNIQUE (name), 
	UNIQUE (token_hash)
);

CREATE TABLE deliveries (
	id INTEGER NOT NULL, 
	subscription_id INTEGER NOT NULL, 
	"key" VARCHAR(128) NOT NULL, 
	transport VARCHAR(16) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	subject VARCHAR NOT NULL, 
	payload BLOB NOT NULL, 
	recipients VARCHAR NOT NULL, 
	hit_count INTEGER NOT NULL, 
	attempts INTEGER NOT NULL, 
	last_error VARCHAR, 
	next_attempt_at DATETIME, 
	lease_until DATETIME, 
	sent_at DATETIME, 
	created_at DATETIME, 
	target VARCHAR, 
	PRIMARY KEY (id), 
	FOREIGN KEY(subscription_id) REFERENCES subscriptions (id), 
	UNIQUE ("key")
);

CREATE TABLE delivery_hits (
	delivery_id INTEGER NOT NULL, 
	hit_id INTEGER NOT NULL, 
	subscription_id INTEGER NOT NULL, 
	PRIMARY KEY (delivery_id, hit_id), 
	FOREIGN KEY(delivery_id) REFERENCES deliveries (id), 
	FOREIGN KEY(hit_id) REFERENCES hits (id), 
	FOREIGN KEY(subscription_id) REFERENCES subscriptions (id), 
	CONSTRAINT uq_delivery_hits_sub_hit UNIQUE (subscription_id, hit_id)
);

CREATE TABLE "feeds" (
	id INTEGER NOT NULL, 
	url VARCHAR(2048) NOT NULL, 
	name VARCHAR(512), 
	interval_seconds INTEGER NOT NULL, 
	alert_window_seconds INTEGER NOT NULL, 
	active BOOLEAN NOT NULL, 
	etag VARCHAR(1024), 
	last_modified VARCHAR(256), 
	last_status INTEGER, 
	last_error VARCHAR, 
	error_count INTEGER NOT NULL, 
	first_polled_at DATETIME, 
	last_polled_at DATETIME, 
	last_success_at DATETIME, 
	next_poll_at DATETIME, 
	lease_until DATETIME, 
	lease_owner VARCHAR(128), 
	created_at DATETIME, 
	origin VARCHAR(16) DEFAULT 'config' NOT NULL, 
	category VARCHAR(512), 
	moved_to VARCHAR(2048), 
	moved_since DATETIME, 
	last_entry_at DATETIME, 
	entry_gap_seconds FLOAT, 
	paused BOOLEAN DEFAULT 0 NOT NULL, 
	removed_at DATETIME, last_poll_ms INTEGER, 
	PRIMARY KEY (id), 
	UNIQUE (url)
);

CREATE TABLE hits (
	id INTEGER NOT NULL, 
	item_id INTEGER NOT NULL, 
	watchlist VARCHAR(128) NOT NULL, 
	watchlist_version VARCHAR(64) NOT NULL, 
	score FLOAT NOT NULL, 
	evidence VARCHAR NOT NULL, 
	created_at DATETIME, 
	PRIMARY KEY (id), 
	FOREIGN KEY(item_id) REFERENCES items (id), 
	CONSTRAINT uq_hits_item_watchlist UNIQUE (item_id, watchlist)
);

CREATE TABLE "items" (
	id INTEGER NOT NULL, 
	fingerprint VARCHAR(128) NOT NULL, 
	feed_id INTEGER NOT NULL, 
	guid VARCHAR(2048), 
	link VARCHAR(2048), 
	title VARCHAR NOT NULL, 
	summary VARCHAR NOT NULL, 
	content VARCHAR NOT NULL, 
	author VARCHAR(512), 
	published_at DATETIME, 
	fetched_at DATETIME, 
	alertable BOOLEAN NOT NULL, 
	story_id INTEGER, 
	signature BLOB, 
	pruned BOOLEAN DEFAULT 0 NOT NULL, matched_with VARCHAR(32), lang VARCHAR(8), 
	PRIMARY KEY (id), 
	FOREIGN KEY(feed_id) REFERENCES feeds (id), 
	UNIQUE (fingerprint)
);

CREATE VIRTUAL TABLE items_fts USING fts5(title, summary, content, content='items', content_rowid='id', tokenize='trigram');

CREATE TABLE match_sets (
	"key" VARCHAR(32) NOT NULL, 
	lists VARCHAR NOT NULL, 
	created_at DATETIME, 
	PRIMARY KEY ("key")
);

CREATE TABLE operators (
	name VARCHAR(64) NOT NULL, 
	password_hash VARCHAR(256) NOT NULL, 
	updated_at DATETIME, 
	PRIMARY KEY (name)
);

CREATE TABLE "story_keys" (
	"key" VARCHAR(64) NOT NULL, 
	item_id INTEGER NOT NULL, 
	story_id INTEGER NOT NULL, 
	published_at DATETIME, 
	PRIMARY KEY ("key", item_id), 
	CONSTRAINT fk_story_keys_item_id FOREIGN KEY(item_id) REFERENCES items (id)
);

CREATE TABLE subscriber_preferences (
	subscription VARCHAR(64) NOT NULL, 
	address VARCHAR(320) NOT NULL, 
	watchlists VARCHAR, 
	schedule VARCHAR(128), 
	timezone VARCHAR(64), 
	quiet_hours VARCHAR(32), 
	created_at DATETIME, 
	updated_at DATETIME, 
	PRIMARY KEY (subscription, address)
);

CREATE TABLE subscriptions (
	id INTEGER NOT NULL, 
	name VARCHAR(64) NOT NULL, 
	schedule VARCHAR(128) NOT NULL, 
	next_due_at DATETIME, 
	last_planned_at DATETIME, 
	lease_until DATETIME, 
	created_at DATETIME, 
	PRIMARY KEY (id), 
	UNIQUE (name)
);

CREATE TABLE unsubscribes (
	subscription VARCHAR(64) NOT NULL, 
	address VARCHAR(320) NOT NULL, 
	created_at DATETIME, 
	PRIMARY KEY (subscription, address)
);

CREATE TABLE workers (
	owner VARCHAR(128) NOT NULL, 
	hostname VARCHAR(256) NOT NULL, 
	pid INTEGER NOT NULL, 
	started_at DATETIME, 
	heartbeat_at DATETIME, 
	info VARCHAR NOT NULL, 
	PRIMARY KEY (owner)
);

CREATE INDEX ix_deliveries_next_attempt_at ON deliveries (next_attempt_at);

CREATE INDEX ix_deliveries_status ON deliveries (status);

CREATE INDEX ix_deliveries_status_next_attempt_at ON deliveries (status, next_attempt_at);

CREATE INDEX ix_deliveries_subscription_id ON deliveries (subscription_id);

CREATE INDEX ix_delivery_hits_hit_id ON delivery_hits (hit_id);

CREATE INDEX ix_feeds_next_poll_at ON feeds (next_poll_at);

CREATE INDEX ix_hits_created_at ON hits (created_at);

CREATE INDEX ix_hits_item_id ON hits (item_id);

CREATE INDEX ix_hits_watchlist_id ON hits (watchlist, id);

CREATE INDEX ix_items_feed_id ON items (feed_id);

CREATE INDEX ix_items_fetched_at ON items (fetched_at);

CREATE INDEX ix_items_published_at ON items (published_at);

CREATE INDEX ix_items_story_id ON items (story_id);

CREATE INDEX ix_story_keys_published_at ON story_keys (published_at);

CREATE INDEX ix_workers_heartbeat_at ON workers (heartbeat_at);

CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN INSERT INTO items_fts(items_fts, rowid, title, summary, content) VALUES ('delete', old.id, old.title, old.summary, old.content); END;

CREATE TRIGGER items_fts_update AFTER UPDATE OF title, summary, content ON items BEGIN INSERT INTO items_fts(items_fts, rowid, title, summary, content) VALUES ('delete', old.id, old.title, old.summary, old.content); INSERT INTO items_fts(rowid, title, summary, content) VALUES (new.id, new.title, new.summary, new.content); END;
