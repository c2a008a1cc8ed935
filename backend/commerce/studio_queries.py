"""SQL of the product studio: the product as a maker may use it, runs and breakdowns."""

# A product the user may make clips of: the owner of its shop, or anyone when the shop takes
# affiliates, unless one of the two blocked the other. (The same rule as generation's
# _check_product, which re-checks it when each generation is created.)
PRODUCT_FOR_MAKER = """
SELECT p.id, p.title, p.description, p.brand, p.price_minor, p.currency
FROM products p JOIN shops s ON s.id = p.shop_id
WHERE p.id = $1 AND p.deleted_at IS NULL
  AND (s.owner_id = $2
       OR (s.allow_affiliates
           AND NOT EXISTS (SELECT 1 FROM blocks b
                           WHERE (b.blocker_id = s.owner_id AND b.blocked_id = $2)
                              OR (b.blocker_id = $2 AND b.blocked_id = s.owner_id))))
"""

INSERT_RUN = """
INSERT INTO studio_runs (
    user_id, product_id, breakdown_id, goal, style, language, variants, seconds, writer, scripts,
    generation_ids
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
RETURNING id
"""

RUN = """
SELECT id, user_id, product_id, breakdown_id, goal, style, language, variants, seconds, writer,
       scripts, generation_ids, created_at
FROM studio_runs WHERE id = $1 AND user_id = $2
"""

INSERT_BREAKDOWN = """
INSERT INTO breakdowns (user_id, clip_id, structure, metrics) VALUES ($1, $2, $3, $4)
RETURNING id, clip_id, structure, metrics, created_at
"""

BREAKDOWN = """
SELECT id, clip_id, structure, metrics, created_at FROM breakdowns WHERE id = $1 AND user_id = $2
"""

SAVE_SCORE = """
INSERT INTO take_scores (
    take_id, realism, product_consistency, voice_over, script_structure, overall, judge, notes
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (take_id) DO UPDATE SET
    realism = EXCLUDED.realism, product_consistency = EXCLUDED.product_consistency,
    voice_over = EXCLUDED.voice_over, script_structure = EXCLUDED.script_structure,
    overall = EXCLUDED.overall, judge = EXCLUDED.judge, notes = EXCLUDED.notes, scored_at = now()
"""

PRODUCT = "SELECT title, description, brand, price_minor, currency FROM products WHERE id = $1"
