"""SQL of the product studio: the product as a maker may use it, runs and breakdowns."""

from backend.commerce.queries import MAY_USE

# A product the user may make clips of: commerce's one rule (MAY_USE), which tagging and
# generation's product check use too.
PRODUCT_FOR_MAKER = f"""
SELECT p.id, p.title, p.description, p.brand, p.price_minor, p.currency
FROM products p JOIN shops s ON s.id = p.shop_id
WHERE p.id = $1 AND p.deleted_at IS NULL AND {MAY_USE}
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
