"""rge-v1's output format on oracle rationales for numeric and named VQA answers (DocVQA, ChartQA,
InfographicsVQA): the current regex accepts them all, the pre-fix regex (periods only at sentence ends,
ASCII only) rejected most, and the special tokens, line breaks and control characters stay out. The shares
are measured by the real curate stage with the reference generator (run with -s to see them)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rge_core.artifacts.store import ArtifactStore
from rge_core.curation.validate import RationaleRules, reject_reason, token_counter
from rge_core.pipeline import run_pipeline
from rge_core.prompts import load_prompt_set
from tests.helpers import small_config

# The pre-fix rge-v1 regex, kept to measure what it rejected: 1-4 ASCII sentences, periods only at their ends.
OLD_REGEX = r"""[A-Z0-9][A-Za-z0-9 ,;:!?'"()/%&$+-]{4,398}[.]( [A-Z0-9][A-Za-z0-9 ,;:!?'"()/%&$+-]{4,398}[.]){0,3}"""

# (subset, question, answer, rationale as a strong MLLM writes it)
PAIRS = [
    (
        "DocVQA",
        "What is the total amount due?",
        "$1,234.56",
        "The image is a scanned invoice with an itemized table and a summary box at the bottom right. The line "
        "labelled Total Amount Due, below the subtotal and 8.25% sales tax, reads $1,234.56.",
    ),
    (
        "DocVQA",
        "What is the date mentioned in the letter?",
        "March 3, 1998",
        "The document is a typed business letter on company letterhead. The date line just above the "
        "recipient's address reads March 3, 1998, which is the date the question asks for.",
    ),
    (
        "DocVQA",
        "Who is the sender of this memo?",
        "Dr. R. J. Müller",
        "This is an interoffice memorandum with To, From and Subject fields at the top. The From field names "
        "Dr. R. J. Müller of the Research Dept., so he is the sender.",
    ),
    (
        "DocVQA",
        "What is the percentage of moisture?",
        "12.5%",
        "The page is a laboratory analysis report listing sample properties in two columns. The row for "
        "moisture content gives a value of 12.5%, next to ash at 3.2%.",
    ),
    (
        "DocVQA",
        "Which city is the conference held in?",
        "Zürich",
        "The image shows a conference program cover with the event title, dates and venue. The venue line "
        "places the meeting at the ETH campus in Zürich, Switzerland.",
    ),
    (
        "DocVQA",
        "What is the budget for travel?",
        "$4,500.00",
        "The document is a grant budget summary with one row per expense category. The travel row lists "
        "$4,500.00 for the fiscal year, between personnel and equipment costs.",
    ),
    (
        "DocVQA",
        "What is the name of the company?",
        "Nestlé S.A.",
        "The letterhead at the top of the page carries the company logo and its registered name. It reads "
        "Nestlé S.A., Vevey, so that is the company in question.",
    ),
    (
        "DocVQA",
        "What is the page number?",
        "17",
        "The scanned page is part of a longer report, with a running header and a footer. The footer at the "
        "bottom center shows the page number 17.",
    ),
    (
        "DocVQA",
        "Who is the chairman of the board?",
        "J. A. O'Brien",
        "The image is a list of directors from an annual report, with their titles. The first entry, "
        "J. A. O'Brien, is marked as Chairman of the Board.",
    ),
    (
        "DocVQA",
        "What is the total cholesterol value?",
        "189 mg/dL",
        "This is a patient lab results sheet with test names, results and reference ranges. The total "
        "cholesterol row shows 189 mg/dL, within the normal range of less than 200.",
    ),
    (
        "ChartQA",
        "What is the value of the highest bar?",
        "47.3",
        "The bar chart compares internet usage across five age groups. The tallest bar, for ages 18–29, is "
        "labelled 47.3, higher than every other group.",
    ),
    (
        "ChartQA",
        "What was the GDP growth rate in 2020?",
        "-3.4",
        "The line chart tracks annual U.S. GDP growth from 2010 to 2022. The point for 2020 dips below zero "
        "to −3.4%, the only negative year on the chart.",
    ),
    (
        "ChartQA",
        "What is the difference between the highest and lowest values?",
        "21.6",
        "The chart shows unemployment rates by country, with Spain highest at 27.1% and Japan lowest at 5.5%. "
        "Subtracting gives 27.1 − 5.5 = 21.6 percentage points.",
    ),
    (
        "ChartQA",
        "What percentage of respondents said Very satisfied?",
        "38",
        "The pie chart splits survey answers into four satisfaction levels. The largest slice, labelled “Very "
        "satisfied,” accounts for 38% of respondents.",
    ),
    (
        "ChartQA",
        "In which year did sales peak?",
        "2017",
        "The line chart plots annual sales in millions of euros from 2012 to 2021. The curve reaches its "
        "maximum of €4.8 million in 2017 and declines afterwards.",
    ),
    (
        "ChartQA",
        "What is the average of the two smallest values?",
        "12.25",
        "The horizontal bars show market shares of six smartphone brands. The two smallest are 11.4 and 13.1, "
        "and their average is (11.4 + 13.1) / 2 = 12.25.",
    ),
    (
        "ChartQA",
        "What is the share of renewables in 2019?",
        "26.2",
        "The stacked bar chart breaks electricity generation into coal, gas, nuclear and renewables by year. "
        "In the 2019 bar the renewables segment is labelled 26.2%.",
    ),
    (
        "ChartQA",
        "Which country has the lowest value?",
        "Côte d'Ivoire",
        "The chart ranks West African countries by literacy rate. The shortest bar at the bottom belongs to "
        "Côte d'Ivoire, at 47.2%.",
    ),
    (
        "ChartQA",
        "How many times is the value for 2015 greater than for 2005?",
        "2.5",
        "The column chart shows visitor numbers of 1.2 million in 2005 and 3.0 million in 2015. Dividing 3.0 by "
        "1.2 gives 2.5, so 2015 is 2.5 times 2005.",
    ),
    (
        "ChartQA",
        "What is the median value of the blue line?",
        "0.85",
        "The chart has two lines for interest rates in the U.K. and the euro area. The blue U.K. line takes the "
        "values 0.5, 0.75, 0.85, 1.0 and 1.25, so its median is 0.85.",
    ),
    (
        "InfographicsVQA",
        "What percentage of people work from home?",
        "42%",
        "The infographic summarizes remote-work survey results with icons and large numbers. Next to the house "
        "icon it states that 42% of employees now work from home full-time.",
    ),
    (
        "InfographicsVQA",
        "How many deaths were reported in Brazil?",
        "689,000",
        "The infographic shows COVID-19 statistics per country on a world map. The callout for Brazil reports "
        "689,000 deaths, the second highest after the U.S.",
    ),
    (
        "InfographicsVQA",
        "What is the average price of a cappuccino?",
        "€3.20",
        "The graphic compares café prices across European capitals with cup icons. The average price of a "
        "cappuccino is given as €3.20, well above Madrid's €2.10.",
    ),
    (
        "InfographicsVQA",
        "Who is the CEO mentioned?",
        "Satya Nadella",
        "The infographic profiles a tech company, with its founding year, headquarters and leadership. The "
        "leadership panel names Satya Nadella as CEO since Feb. 2014.",
    ),
    (
        "InfographicsVQA",
        "What is the population of São Paulo?",
        "12.3 million",
        "The infographic lists the largest cities in Latin America with population bars. The top bar, São "
        "Paulo, shows 12.3 million inhabitants, ahead of Mexico City.",
    ),
    (
        "InfographicsVQA",
        "What percent of smartphone users are aged 65+?",
        "61%",
        "The graphic breaks smartphone ownership down by age bracket, e.g. one row of phone icons per bracket. "
        "The 65+ bracket reads 61%, the lowest of all groups.",
    ),
    (
        "InfographicsVQA",
        "When was the WHO founded?",
        "1948",
        "The timeline infographic marks milestones in global health, starting with the founding of the WHO in "
        "Geneva. The first marker is dated April 7, 1948.",
    ),
    (
        "InfographicsVQA",
        "What is the recommended daily water intake for men?",
        "3.7 L",
        "The health infographic shows two figures, a man and a woman, each with a water bottle. The label under "
        "the man says 3.7 L per day, versus 2.7 L for women.",
    ),
    (
        "InfographicsVQA",
        "Which festival is shown in the graphic?",
        "Oktoberfest",
        "The infographic celebrates a Munich tradition, with beer steins, pretzels and a Ferris wheel. Its "
        "title “Oktoberfest in Zahlen” – Oktoberfest in numbers – names the festival.",
    ),
    (
        "InfographicsVQA",
        "How much did online sales grow?",
        "14.9%",
        "The retail infographic compares e-commerce with in-store sales for 2021 vs. 2020. The arrow next to "
        "the online cart shows growth of 14.9%, about three times the in-store rate.",
    ),
]
RATIONALES = [rationale for _, _, _, rationale in PAIRS]
GOOD = RATIONALES[0]
# What the format must still keep out, each a variant of an accepted rationale.
NEGATIVES = {
    "line break": GOOD.replace(" The line", "\nThe line"),
    "paragraph break": GOOD.replace(" The line", "\n\nThe line"),
    "unicode line separator": GOOD.replace(" The line", "\u2028The line"),
    "<emb>": GOOD.replace(" reads", " <emb> reads"),
    "<|image_pad|>": GOOD.replace("The image", "The <|image_pad|> image"),
    "angle brackets": GOOD.replace("8.25%", "<b>8.25%</b>"),
    "pipe": GOOD.replace("subtotal and", "subtotal | and"),
    "markdown": GOOD.replace("Total Amount Due", "**Total Amount Due**"),
    "leading space": " " + GOOD,
    "no final punctuation": GOOD[:-1],
    "tab": GOOD.replace("invoice with", "invoice\twith"),
    "NUL": GOOD.replace("invoice", "invo\x00ice"),
    "escape": GOOD.replace("invoice", "\x1b[1minvoice"),
    "C1 control": GOOD.replace("invoice", "invoice\x85"),
    "too long": "The chart shows a value. " * 40 + "That is all.",
}


def reject_share(regex: str) -> float:
    return sum(not re.fullmatch(regex, text) for text in RATIONALES) / len(RATIONALES)


@pytest.fixture(scope="module")
def rules(tiny_model_dir) -> RationaleRules:
    prompt_set = load_prompt_set("rge-v1")
    return RationaleRules(16, 2000, prompt_set.output_regex, prompt_set.max_tokens, token_counter(str(tiny_model_dir)))


def test_new_format_accepts_every_rationale(rules):
    assert len(RATIONALES) == 30
    assert {text: reject_reason(text, "stop", rules) for text in RATIONALES} == {text: "" for text in RATIONALES}
    assert max(map(rules.count_tokens, RATIONALES)) <= 128  # within the budget even with the tiny tokenizer


def test_old_regex_rejected_most_of_them():
    old, new = reject_share(OLD_REGEX), reject_share(load_prompt_set("rge-v1").output_regex)
    print(f"\nregex reject share on {len(RATIONALES)} rationales: old {old:.0%}, new {new:.0%}")
    assert new == 0 and old >= 0.7


@pytest.mark.parametrize("name", NEGATIVES)
def test_new_format_still_rejects(name, rules):
    text = NEGATIVES[name]
    assert not re.fullmatch(rules.output_regex, text)
    if name != "leading space":  # validation strips surrounding whitespace before matching
        assert reject_reason(text, "stop", rules)


def test_curate_stage_reject_rate_before_and_after(tmp_path, data_write_split, data_touch_images):
    """The number to quote: the real curate stage with the reference generator, once with rge-v1 and once
    with a copy whose only change is the pre-fix regex."""
    source = tmp_path / "mmeb-train"
    reference = {}
    for subset in ("DocVQA", "ChartQA", "InfographicsVQA"):
        rows = [(question, answer, text) for name, question, answer, text in PAIRS if name == subset]
        columns = {
            "qry": [f"<|image_1|>\nRepresent the given image with the following question: {q}" for q, _, _ in rows],
            "qry_image_path": [f"images/{subset}/{i}.jpg" for i in range(len(rows))],
            "pos_text": [answer for _, answer, _ in rows],
            "pos_image_path": [""] * len(rows),
        }
        data_write_split(source, subset, "original", columns)
        data_touch_images(source, columns)
        reference.update({f"{subset}/original/{i}": text for i, (_, _, text) in enumerate(rows)})
    reference_file = tmp_path / "reference.parquet"
    pq.write_table(pa.table({"pair_id": list(reference), "rationale": list(reference.values())}), reference_file)
    old_set = Path(shutil.copytree("prompts/rge-v1", tmp_path / "rge-v1-old-regex"))
    manifest = (old_set / "manifest.yaml").read_text()
    (old_set / "manifest.yaml").write_text(manifest.replace(load_prompt_set("rge-v1").output_regex, OLD_REGEX))
    assert load_prompt_set(old_set).output_regex == OLD_REGEX

    store = ArtifactStore(str(tmp_path / "artifacts"))
    rates = {}
    for label, prompt_set in (("before", old_set), ("after", "prompts/rge-v1")):
        config = small_config(
            store.root,
            f"data.source={source}",
            "curation.generator=reference",
            f"curation.reference={reference_file}",
            f"curation.prompt_set={prompt_set}",
            "curation.max_reject_rate=1.0",
        )
        stats = store.get(run_pipeline(config, ["curate"])["curate"]).manifest.stats
        assert stats["rows"] == len(PAIRS)
        rates[label] = stats["reject_rate"]
    print(
        f"\ncurate reject_rate on {len(PAIRS)} DocVQA/ChartQA/InfographicsVQA pairs: "
        f"before {rates['before']:.0%}, after {rates['after']:.0%}"
    )
    assert rates["after"] == 0 and rates["before"] == pytest.approx(reject_share(OLD_REGEX), abs=1e-4)
