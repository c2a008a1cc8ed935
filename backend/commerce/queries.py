"""SQL of shops, products, tags, taps, orders and the ledger."""

SHOP_COLUMNS = (
    "id, platform, external_id, url, name, allow_affiliates, commission_bps, created_at, webhook_secret"
)

INSERT_SHOP = f"""
INSERT INTO shops (owner_id, platform, external_id, url, name, allow_affiliates, commission_bps,
                   webhook_secret)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (platform, external_id) DO NOTHING
RETURNING {SHOP_COLUMNS}
"""

OWN_SHOP = f"SELECT {SHOP_COLUMNS} FROM shops WHERE id = $1 AND owner_id = $2"

MY_SHOPS = f"""
SELECT {SHOP_COLUMNS} FROM shops WHERE owner_id = $1 AND ($2::bigint IS NULL OR id < $2)
ORDER BY id DESC LIMIT $3
"""

UPDATE_SHOP = f"""
UPDATE shops SET url = coalesce($3, url), name = coalesce($4, name),
    allow_affiliates = coalesce($5, allow_affiliates), commission_bps = coalesce($6, commission_bps),
    updated_at = now()
WHERE id = $1 AND owner_id = $2
RETURNING {SHOP_COLUMNS}
"""

ROTATE_SECRET = f"""
UPDATE shops SET webhook_secret = $3, updated_at = now() WHERE id = $1 AND owner_id = $2
RETURNING {SHOP_COLUMNS}
"""

DELETE_SHOP = "DELETE FROM shops WHERE id = $1 AND owner_id = $2 RETURNING id"

SHOP_SECRET = "SELECT webhook_secret FROM shops WHERE id = $1"

PRODUCT_COLUMNS = """
p.id, p.shop_id, p.title, p.description, p.url, p.image_urls, p.brand, p.price_minor, p.currency,
p.availability, p.commission_bps, p.source, p.created_at, p.updated_at
"""

INSERT_PRODUCT = f"""
INSERT INTO products AS p (shop_id, title, description, url, image_urls, brand, price_minor, currency,
                           availability, commission_bps, source)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
RETURNING {PRODUCT_COLUMNS}
"""

# Who may see a product: its shop's owner, and anyone signed in when the shop takes affiliates
# (creators browse what they may tag), unless the owner and they block each other. The same
# rule says who may tag it or make clips of it.
MAY_USE = """
(s.owner_id = $2
 OR (s.allow_affiliates
     AND NOT EXISTS (SELECT 1 FROM blocks b
                     WHERE (b.blocker_id = s.owner_id AND b.blocked_id = $2)
                        OR (b.blocker_id = $2 AND b.blocked_id = s.owner_id))))
"""

PRODUCT_FOR = f"""
SELECT {PRODUCT_COLUMNS}, s.owner_id
FROM products p JOIN shops s ON s.id = p.shop_id
WHERE p.id = $1 AND p.deleted_at IS NULL AND {MAY_USE}
"""

SHOP_PRODUCTS = f"""
SELECT {PRODUCT_COLUMNS}
FROM products p JOIN shops s ON s.id = p.shop_id
WHERE p.shop_id = $1 AND p.deleted_at IS NULL AND {MAY_USE} AND ($3::bigint IS NULL OR p.id < $3)
ORDER BY p.id DESC LIMIT $4
"""

SHOP_FOR = f"SELECT s.id FROM shops s WHERE s.id = $1 AND {MAY_USE}"

UPDATE_PRODUCT = f"""
UPDATE products p SET title = coalesce($3, p.title), url = coalesce($4, p.url),
    description = coalesce($5, p.description), image_urls = coalesce($6, p.image_urls),
    brand = coalesce($7, p.brand), price_minor = CASE WHEN $10 THEN $8 ELSE p.price_minor END,
    currency = CASE WHEN $10 THEN $9 ELSE p.currency END, availability = coalesce($11, p.availability),
    commission_bps = coalesce($12, p.commission_bps), updated_at = now()
FROM shops s
WHERE p.id = $1 AND p.deleted_at IS NULL AND s.id = p.shop_id AND s.owner_id = $2
RETURNING {PRODUCT_COLUMNS}
"""

DELETE_PRODUCT = """
UPDATE products p SET deleted_at = now(), updated_at = now()
FROM shops s
WHERE p.id = $1 AND p.deleted_at IS NULL AND s.id = p.shop_id AND s.owner_id = $2
RETURNING p.id
"""

INSERT_TAG = """
INSERT INTO product_tags (clip_id, product_id, created_by, start_ms, end_ms, x, y)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (clip_id, product_id) WHERE removed_at IS NULL DO NOTHING
RETURNING id
"""

LIVE_TAGS = "SELECT count(*) FROM product_tags WHERE clip_id = $1 AND removed_at IS NULL"

REMOVE_TAG = """
UPDATE product_tags SET removed_at = now()
WHERE id = $1 AND clip_id = $2 AND removed_at IS NULL
RETURNING id
"""

TAG_FOR_TAP = """
SELECT t.id, t.clip_id, t.product_id, p.shop_id, p.url
FROM product_tags t JOIN products p ON p.id = t.product_id
WHERE t.id = $1 AND t.clip_id = $2 AND t.removed_at IS NULL AND p.deleted_at IS NULL
"""

INSERT_TAP = """
WITH new AS (
    INSERT INTO taps (tag_id, clip_id, product_id, shop_id, viewer_id, day)
    VALUES ($1, $2, $3, $4, $5, (now() AT TIME ZONE 'UTC')::date)
    ON CONFLICT (tag_id, viewer_id, day) DO NOTHING
    RETURNING id
)
SELECT id FROM new
UNION ALL
SELECT id FROM taps WHERE tag_id = $1 AND viewer_id = $5 AND day = (now() AT TIME ZONE 'UTC')::date
LIMIT 1
"""

TAP_TARGET = """
SELECT t.id, t.clip_id, t.tag_id, t.viewer_id, p.url
FROM taps t JOIN products p ON p.id = t.product_id
WHERE t.id = $1
"""

# --- orders and the ledger -------------------------------------------------------------------

REMEMBER_DELIVERY = """
INSERT INTO webhook_deliveries (shop_id, webhook_id) VALUES ($1, $2)
ON CONFLICT DO NOTHING RETURNING webhook_id
"""

ORDER_PRODUCT = "SELECT id, currency FROM products WHERE id = $1 AND shop_id = $2"

# The tap the order is credited to: the one it names (if it is this shop's, for this product,
# and recent enough), else the buyer's last tap on the product within the window.
ATTRIBUTION = """
SELECT t.id, t.clip_id, c.author_id, c.cameo_ids
FROM taps t JOIN clips c ON c.id = t.clip_id
WHERE t.shop_id = $1 AND t.created_at > $5::timestamptz - make_interval(days => $6)
  AND t.created_at <= $5::timestamptz + interval '5 minutes'
  AND ($4::bigint IS NOT NULL AND t.id = $4
       OR $4::bigint IS NULL AND t.viewer_id = $3 AND ($2::bigint IS NULL OR t.product_id = $2))
  AND ($2::bigint IS NULL OR t.product_id = $2)
  -- A creator buying through their own clip earns no commission on it.
  AND t.viewer_id IS DISTINCT FROM c.author_id
ORDER BY t.created_at DESC, t.id DESC
LIMIT 1
"""

INSERT_ORDER = """
INSERT INTO orders (shop_id, external_order_id, product_id, tap_id, clip_id, buyer_id, quantity,
                    amount_minor, currency, placed_at)
VALUES ($1, $2, $3, $4, $5, (SELECT id FROM users WHERE id = $6), $7, $8, $9, $10)
ON CONFLICT (shop_id, external_order_id) DO NOTHING
RETURNING id, status, clip_id
"""

ORDER = """
SELECT id, status, clip_id, tap_id, amount_minor, refunded_minor, currency, product_id
FROM orders WHERE shop_id = $1 AND external_order_id = $2
"""

LOCK_ORDER = """
SELECT id, status, clip_id, amount_minor, refunded_minor, currency, product_id
FROM orders WHERE shop_id = $1 AND external_order_id = $2 FOR UPDATE
"""

INSERT_REFUND = """
INSERT INTO refunds (order_id, external_refund_id, amount_minor) VALUES ($1, $2, $3)
ON CONFLICT (order_id, external_refund_id) DO NOTHING RETURNING id
"""

SET_REFUNDED = """
UPDATE orders SET refunded_minor = $2,
    status = CASE WHEN $2 >= amount_minor THEN 'refunded' ELSE 'partially_refunded' END
WHERE id = $1 RETURNING status
"""

SHARES = """
SELECT sh.commission_bps AS shop_bps, p.commission_bps AS product_bps, sh.owner_id AS seller_id
FROM shops sh LEFT JOIN products p ON p.id = $2
WHERE sh.id = $1
"""

# Licensed cameos in a clip and the share of commerce their owners take (not the clip's author).
CAMEO_SHARES = """
SELECT id, owner_id, revenue_share_bps FROM cameos
WHERE id = ANY($1::bigint[]) AND revenue_share_bps > 0 AND owner_id <> $2
ORDER BY id
"""

ACCOUNT = """
WITH found AS (
    SELECT id FROM ledger_accounts
    WHERE kind = $1 AND coalesce(owner_id, 0) = coalesce($2, 0) AND currency = $3
), made AS (
    INSERT INTO ledger_accounts (kind, owner_id, currency)
    SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM found)
    ON CONFLICT DO NOTHING
    RETURNING id
)
SELECT id FROM found UNION ALL SELECT id FROM made
"""

INSERT_TRANSACTION = """
INSERT INTO ledger_transactions (kind, reference, memo) VALUES ($1, $2, $3)
ON CONFLICT (reference) DO NOTHING RETURNING id
"""

INSERT_ENTRY = """
INSERT INTO ledger_entries (transaction_id, account_id, amount_minor, currency) VALUES ($1, $2, $3, $4)
"""

BALANCES = """
SELECT a.kind, a.currency, coalesce(sum(e.amount_minor), 0)::bigint AS balance
FROM ledger_accounts a LEFT JOIN ledger_entries e ON e.account_id = a.id
WHERE a.owner_id = $1 AND a.kind = ANY($2::text[])
GROUP BY a.kind, a.currency
ORDER BY a.kind, a.currency
"""

STATEMENT = """
SELECT e.id, a.kind AS account, e.amount_minor, e.currency, t.kind, t.reference, e.created_at
FROM ledger_entries e
JOIN ledger_accounts a ON a.id = e.account_id
JOIN ledger_transactions t ON t.id = e.transaction_id
WHERE a.owner_id = $1 AND a.kind = ANY($2::text[]) AND ($3::bigint IS NULL OR e.id < $3)
ORDER BY e.id DESC
LIMIT $4
"""

# --- seller analytics ------------------------------------------------------------------------

# A page of a shop's analytics in one statement. $1 shop, $2 from, $3 to (half-open), $4 group
# ('clip', 'product', 'day'), $5 the sort key after which the page starts, $6 page size.
# Impressions and views are the events of clips that tag the shop's products (a clip tagging
# two of its products counts for each when grouped by product); taps and orders come from their
# own tables; GMV is net of refunds and, like commission (the creator's and cameo owners'
# shares as booked), kept per currency.
ANALYTICS = """
WITH tagged AS (
    SELECT DISTINCT t.clip_id, t.product_id
    FROM product_tags t JOIN products p ON p.id = t.product_id
    WHERE p.shop_id = $1
), ev AS (
    SELECT e.clip_id, (e.at AT TIME ZONE 'UTC')::date AS day,
           count(*) FILTER (WHERE e.type = 'impression') AS impressions,
           count(*) FILTER (WHERE e.type = 'watch') AS views
    FROM events e
    WHERE e.clip_id IN (SELECT clip_id FROM tagged) AND e.at >= $2 AND e.at < $3
    GROUP BY 1, 2
), facts AS (
    SELECT ev.clip_id, tg.product_id, ev.day, ev.impressions, ev.views, 0::bigint AS taps,
           0::bigint AS orders, NULL::text AS currency, 0::bigint AS gmv, 0::bigint AS commission
    FROM ev LEFT JOIN tagged tg ON $4 = 'product' AND tg.clip_id = ev.clip_id
    UNION ALL
    SELECT tp.clip_id, tp.product_id, (tp.created_at AT TIME ZONE 'UTC')::date, 0, 0, 1, 0, NULL, 0, 0
    FROM taps tp
    WHERE tp.shop_id = $1 AND tp.created_at >= $2 AND tp.created_at < $3
    UNION ALL
    SELECT o.clip_id, o.product_id, (o.placed_at AT TIME ZONE 'UTC')::date, 0, 0, 0, 1, o.currency,
           o.amount_minor - o.refunded_minor,
           coalesce((SELECT sum(le.amount_minor)
                     FROM ledger_transactions lt
                     JOIN ledger_entries le ON le.transaction_id = lt.id
                     JOIN ledger_accounts la ON la.id = le.account_id
                     WHERE la.kind IN ('creator_earnings', 'cameo_earnings')
                       AND (lt.reference = 'order:' || o.id
                            OR (lt.kind = 'refund' AND lt.memo ->> 'order_id' = o.id::text))), 0)
    FROM orders o
    WHERE o.shop_id = $1 AND o.placed_at >= $2 AND o.placed_at < $3
), keyed AS (
    SELECT CASE $4 WHEN 'day' THEN to_char(day, 'YYYY-MM-DD')
                   WHEN 'clip' THEN lpad(clip_id::text, 20, '0')
                   ELSE lpad(product_id::text, 20, '0') END AS key, *
    FROM facts
    WHERE CASE $4 WHEN 'clip' THEN clip_id IS NOT NULL WHEN 'product' THEN product_id IS NOT NULL
                  ELSE true END
), page AS (
    SELECT key, sum(impressions)::bigint AS impressions, sum(views)::bigint AS views,
           sum(taps)::bigint AS taps, sum(orders)::bigint AS orders
    FROM keyed
    WHERE $5::text IS NULL OR key > $5
    GROUP BY key
    ORDER BY key
    LIMIT $6
), money AS (
    SELECT key, currency, sum(gmv)::bigint AS gmv, sum(commission)::bigint AS commission
    FROM keyed
    WHERE currency IS NOT NULL AND key IN (SELECT key FROM page)
    GROUP BY key, currency
)
SELECT page.*, coalesce(mo.gmv, '{}') AS gmv, coalesce(mo.commission, '{}') AS commission
FROM page
LEFT JOIN (SELECT key, jsonb_object_agg(currency, gmv) AS gmv,
                  jsonb_object_agg(currency, commission) AS commission
           FROM money GROUP BY key) mo ON mo.key = page.key
ORDER BY page.key
"""

# --- campaigns -------------------------------------------------------------------------------

CAMPAIGN_COLUMNS = """
id, advertiser_id, clip_id, product_id, billing, rate_minor, currency, budget_minor, spent_minor,
billed_views, status, created_at, updated_at
"""

INSERT_CAMPAIGN = f"""
INSERT INTO campaigns (advertiser_id, clip_id, product_id, billing, rate_minor, currency, budget_minor,
                       billed_views)
VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce((SELECT impressions FROM clip_stats WHERE clip_id = $2), 0))
RETURNING {CAMPAIGN_COLUMNS}
"""

CAMPAIGN = f"SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1 AND advertiser_id = $2"

LOCK_CAMPAIGN = f"SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1 FOR UPDATE"

MY_CAMPAIGNS = f"""
SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE advertiser_id = $1 AND ($2::bigint IS NULL OR id < $2)
ORDER BY id DESC LIMIT $3
"""

SET_CAMPAIGN_STATUS = f"""
UPDATE campaigns SET status = $2, updated_at = now() WHERE id = $1 RETURNING {CAMPAIGN_COLUMNS}
"""

CHARGE_CAMPAIGN = f"""
UPDATE campaigns SET spent_minor = spent_minor + $2, billed_views = $3,
    status = CASE WHEN spent_minor + $2 >= budget_minor THEN 'exhausted' ELSE status END, updated_at = now()
WHERE id = $1
RETURNING {CAMPAIGN_COLUMNS}
"""

# What pay-per-order campaigns were charged for one order (the platform's side of each charge):
# the campaigns of its clip or product, each looked up by its charge's reference (the unique
# index), not by a pattern that would scan the whole ledger.
ORDER_CHARGES = """
SELECT k.id AS campaign_id, t.reference, e.amount_minor, e.currency
FROM orders o
JOIN campaigns k ON k.billing = 'cpa' AND (k.clip_id = o.clip_id OR k.product_id = o.product_id)
JOIN ledger_transactions t ON t.reference = 'campaign:' || k.id || ':order:' || o.id
JOIN ledger_entries e ON e.transaction_id = t.id
JOIN ledger_accounts a ON a.id = e.account_id AND a.kind = 'platform_fees'
WHERE o.id = $1
ORDER BY k.id
"""

CREDIT_CAMPAIGN = f"""
UPDATE campaigns SET spent_minor = spent_minor - $2,
    status = CASE WHEN status = 'exhausted' THEN 'active' ELSE status END, updated_at = now()
WHERE id = $1
RETURNING {CAMPAIGN_COLUMNS}
"""

# Active pay-per-order campaigns an attributed order pays for, oldest first.
CPA_CAMPAIGNS = """
SELECT id FROM campaigns
WHERE status = 'active' AND billing = 'cpa' AND (clip_id = $1 OR product_id = $2)
ORDER BY id
"""

# Active pay-per-thousand-views campaigns whose clip has a thousand views not yet billed.
CPM_DUE = """
SELECT k.id FROM campaigns k JOIN clip_stats s ON s.clip_id = k.clip_id
WHERE k.status = 'active' AND k.billing = 'cpm' AND s.impressions - k.billed_views >= 1000
ORDER BY k.id
LIMIT $1
"""
