-- NCA ratio n11/n12 of every co-occurring pair over $clips ('all' or 'labelled'), to compare with human answers.
SELECT action, tag, ratio FROM necessity_of($clips);
