"""A labelled matchmaking set: 30 cooperation requests (15 problems, two requesting Parties each) and the
candidates a cooperation officer would put first for each, plus distractors and entries that must never match.

For a request of problem P, the officer's list is P's live, eligible candidates, graded by how directly they act
on it: the open opportunity (3), the offer made on a similar request and the expert or organization/project who
works on exactly this (2), the past request that was matched (1). Everything else is irrelevant (0): candidates
of other problems, even when they share a target, a subject or a region, and generic entries.

The tags are deliberately uneven, as real entries are: some requests name only a GBF goal or a broad subject,
some candidates have no tags at all and only text, others use the other language.

`build(session)` writes it through the same tables the services use; `precision_at`, `ndcg_at` are the metrics.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from app.models import CooperationOffer, CooperationRequest, Opportunity, Record

T = "GBF-TARGET-"
S = "CBD-SUBJECT-"
NOW = datetime.now(UTC)


@dataclass
class Problem:
    key: str
    gbf: list[str]
    subjects: list[str]
    assist: list[str]
    requests: list[dict[str, Any]]  # party, title, problem (+ overrides)
    opportunity: dict[str, Any]  # provider_party / provider_organization, title, description, eligibility
    expert: dict[str, Any]  # party, title, summary (+ tags override)
    org: dict[str, Any]  # party, type (organization|project), title, summary
    offer: dict[str, Any]  # provider_party, description; host: party, title
    past: dict[str, Any]  # party, title, problem
    never: list[dict[str, Any]] = field(default_factory=list)  # entries that must not appear (see build)


PROBLEMS: list[Problem] = [
    Problem(
        "mangroves",
        [f"{T}02", f"{T}08"],
        [f"{S}MARINE", f"{S}RESTORATION"],
        ["technical", "capacity-building"],
        [
            dict(
                party="FJ",
                title="Restoring degraded mangrove forests on Viti Levu",
                problem="Mangrove cover has declined along our coasts; we need methods to replant and monitor "
                "mangroves.",
            ),
            dict(
                party="WS",
                title="Mangrove rehabilitation for coastal protection",
                problem="Storm surges erode shorelines where mangroves were cleared; communities want to restore them.",
                gbf_targets=["GBF-GOAL-A"],
            ),
        ],
        dict(
            provider_party="AU",
            title="Pacific mangrove restoration fellowships",
            description="Fellowships and field training in mangrove replanting, nursery management and monitoring.",
            eligible_regions=["SIDS"],
        ),
        dict(
            party="NZ",
            title="Mangrove ecologist (restoration and blue carbon)",
            summary="Twenty years restoring mangrove stands and measuring their recovery in the Pacific.",
        ),
        dict(
            party="JP",
            type="organization",
            title="Coastal Wetlands Restoration Network",
            summary="Network supporting mangrove nurseries and shoreline rehabilitation projects.",
        ),
        dict(
            provider_party="NZ",
            description="We can train rangers in mangrove planting and survival monitoring.",
            host=dict(party="TO", title="Mangrove planting on Tongatapu"),
        ),
        dict(
            party="VU",
            title="Mangrove replanting after cyclone damage",
            problem="Cyclones destroyed mangroves; we sought help to restore them.",
        ),
        [
            dict(
                kind="opportunity",
                provider_party="AU",
                title="Mangrove restoration grants 2024",
                description="Grants for mangrove replanting.",
                eligible_regions=["SIDS"],
                application_deadline=date(2024, 1, 31),
            )
        ],
    ),
    Problem(
        "reefs",
        [f"{T}03"],
        [f"{S}MARINE", f"{S}PROTECTED-AREAS"],
        ["scientific", "technical"],
        [
            dict(
                party="MV",
                title="Designing marine protected areas for our coral reefs",
                problem="Reef fish stocks fall; we need data and zoning to create effective marine protected areas.",
            ),
            dict(
                party="SC",
                title="Coral reef monitoring for a network of marine reserves",
                problem="We lack reef survey capacity to manage the marine reserves we declared.",
            ),
        ],
        dict(
            provider_organization="Reef Futures Fund",
            title="Coral reef marine protected area design support",
            description="Scientific support for zoning and monitoring coral reef marine protected areas.",
            eligible_regions=["SIDS"],
        ),
        dict(
            party="AU",
            title="Coral reef scientist, marine protected area planning",
            summary="Reef surveys and marine spatial planning for marine protected areas.",
        ),
        dict(
            party="FR",
            type="project",
            title="Indian Ocean reef monitoring project",
            summary="Coral reef surveys and training of marine reserve staff.",
            subjects=[f"{S}MARINE"],
        ),
        dict(
            provider_party="GB",
            description="Our marine institute offers coral reef survey training.",
            host=dict(party="MU", title="Coral reef surveys around Rodrigues"),
        ),
        dict(
            party="KM",
            title="Marine protected area for coral reefs of Mohéli",
            problem="We needed reef data to establish a marine protected area.",
        ),
        [
            dict(
                kind="record",
                status="withdrawn",
                type="expert",
                party="CA",
                title="Coral reef expert (withdrawn)",
                summary="Coral reef marine protected areas.",
            )
        ],
    ),
    Problem(
        "forests",
        [f"{T}02"],
        [f"{S}FORESTS", f"{S}RESTORATION"],
        ["technical", "financial"],
        [
            dict(
                party="GH",
                title="Forest landscape restoration in the transition zone",
                problem="Degraded forest reserves need restoration with native tree species and community nurseries.",
            ),
            dict(
                party="UG",
                title="Restoring degraded forest reserves around Mount Elgon",
                problem="Deforestation degraded forest reserves; we need reforestation planning and finance.",
            ),
        ],
        dict(
            provider_party="DE",
            title="Forest landscape restoration finance for Africa",
            description="Finance and technical advice for forest restoration and reforestation with native trees.",
            eligible_regions=["202"],
        ),
        dict(
            party="BR",
            title="Restoration ecologist (tropical forests)",
            summary="Native tree nurseries and forest restoration planning.",
        ),
        dict(
            party="KE",
            type="organization",
            title="African Forest Landscape Restoration Initiative",
            summary="Countries and partners restoring degraded forest landscapes.",
        ),
        dict(
            provider_party="NO",
            description="Technical advice on reforestation and forest monitoring.",
            host=dict(party="CM", title="Reforestation of degraded forests in the East region"),
        ),
        dict(
            party="RW",
            title="Forest restoration on degraded hillsides",
            problem="We sought finance for forest landscape restoration.",
        ),
        [
            dict(
                kind="opportunity",
                provider_party="DE",
                title="Forest restoration window (closed)",
                description="Forest restoration finance.",
                status="closed",
            )
        ],
    ),
    Problem(
        "invasives",
        [f"{T}06"],
        [f"{S}INVASIVE-SPECIES", f"{S}ISLANDS"],
        ["technical", "equipment"],
        [
            dict(
                party="MU",
                title="Eradicating invasive rats from offshore islets",
                problem="Invasive rats threaten endemic birds; we need eradication equipment and biosecurity planning.",
            ),
            dict(
                party="TO",
                title="Controlling invasive alien plants on Eua",
                problem="Invasive alien vines smother native forest; we need control methods.",
            ),
        ],
        dict(
            provider_organization="Island Conservation Trust",
            title="Island invasive species eradication support",
            description="Equipment and planning for eradication of invasive alien species on islands.",
            eligible_regions=["SIDS"],
        ),
        dict(
            party="NZ",
            title="Biosecurity and invasive species eradication specialist",
            summary="Rat and invasive predator eradication on islands; biosecurity planning.",
        ),
        dict(
            party="GB",
            type="project",
            title="Overseas territories invasive species project",
            summary="Control of invasive alien plants and rats on islands.",
        ),
        dict(
            provider_party="AU",
            description="We offer bait stations and training for invasive rodent eradication.",
            host=dict(party="KI", title="Invasive rodents on Kiritimati"),
        ),
        dict(
            party="SC",
            title="Eradication of invasive cats on Aride",
            problem="Invasive predators on an island nature reserve; help was matched.",
        ),
        [
            dict(
                kind="record",
                status="draft",
                type="organization",
                party="GB",
                title="Invasive species eradication charity (draft)",
                summary="Invasive alien species on islands.",
            )
        ],
    ),
    Problem(
        "abs",
        [f"{T}13"],
        [f"{S}ACCESS-BENEFIT-SHARING"],
        ["policy-advice", "capacity-building"],
        [
            dict(
                party="KE",
                title="Drafting national access and benefit-sharing regulations",
                problem="We must implement the Nagoya Protocol: permits, prior informed consent and mutually agreed "
                "terms.",
            ),
            dict(
                party="PE",
                title="Reglamento nacional de acceso a recursos genéticos",
                problem=None,
                title_lang="es",
                problem_es="Necesitamos asesoría legal para el acceso a recursos genéticos y la participación en los "
                "beneficios (Protocolo de Nagoya).",
            ),
        ],
        dict(
            provider_organization="ABS Capacity Development Initiative",
            title="Legal advice for Nagoya Protocol implementation",
            description={
                "en": "Policy advice and training on access and benefit-sharing laws, permits and mutually "
                "agreed terms.",
                "es": "Asesoría sobre acceso a recursos genéticos y participación en los beneficios.",
            },
        ),
        dict(
            party="CH",
            title="Environmental lawyer, access and benefit-sharing",
            summary="Drafted Nagoya Protocol regulations, permit systems and benefit-sharing contracts.",
        ),
        dict(
            party="DE",
            type="organization",
            title="Benefit-sharing legal clinic",
            summary="Advice on prior informed consent and mutually agreed terms.",
            gbf_targets=["GBF-GOAL-C"],
        ),
        dict(
            provider_party="FR",
            description="Legal experts can review access and benefit-sharing regulations.",
            host=dict(party="CM", title="Access and benefit-sharing regulations"),
        ),
        dict(
            party="MG",
            title="Nagoya Protocol permits system",
            problem="We needed advice to set up access permits and benefit-sharing.",
        ),
        [
            dict(
                kind="opportunity",
                provider_party="ES",
                title="Access and benefit-sharing advice for Argentina",
                description="Nagoya Protocol legal advice.",
                eligible_countries=["AR"],
            )
        ],
    ),
    Problem(
        "dsi",
        [f"{T}13"],
        [f"{S}DSI"],
        ["technical", "training"],
        [
            dict(
                party="IN",
                title="Tracking digital sequence information from our genetic resources",
                problem="We want to trace sequence data in public databases back to our genetic resources.",
            ),
            dict(
                party="BR",
                title="Capacity on genomic databases and sequence data governance",
                problem="Researchers need training on sequence databases and digital sequence information rules.",
                subjects=[f"{S}ACCESS-BENEFIT-SHARING"],
            ),
        ],
        dict(
            provider_party="NL",
            title="Training on digital sequence information and genomic databases",
            description="Courses on sequence databases, metadata and traceability of digital sequence information.",
        ),
        dict(
            party="GB",
            title="Bioinformatician, sequence databases and data provenance",
            summary="Tracing digital sequence information and sequence metadata.",
        ),
        dict(
            party="DE",
            type="organization",
            title="Genomic data provenance institute",
            summary="Sequence databases and digital sequence information traceability.",
        ),
        dict(
            provider_party="JP",
            description="Training on sequence data traceability in public databases.",
            host=dict(party="ZA", title="Traceability of digital sequence information"),
        ),
        dict(
            party="ID",
            title="Sequence data from our genetic resources",
            problem="We needed to trace digital sequence information in databases.",
        ),
        [
            dict(
                kind="request",
                party="MY",
                status="closed",
                title="Digital sequence information tracking (closed)",
                problem="Sequence databases and digital sequence information.",
            )
        ],
    ),
    Problem(
        "taxonomy",
        [f"{T}21"],
        [f"{S}GTI"],
        ["training", "scientific"],
        [
            dict(
                party="CD",
                title="Training taxonomists for the Congo basin",
                problem="We have few taxonomists; we need training in species identification and DNA barcoding.",
            ),
            dict(
                party="LA",
                title="Building a national reference collection and barcoding",
                problem="Museum specimens need curation and DNA barcoding to identify species.",
            ),
        ],
        dict(
            provider_organization="Global Taxonomy Initiative partners",
            title="Taxonomy training for LDCs",
            description="Training in specimen identification, DNA barcoding and natural history collections.",
            eligible_regions=["LDC"],
        ),
        dict(
            party="BE",
            title="Entomologist and DNA barcoding trainer",
            summary="Taxonomic training and specimen identification in Central Africa.",
        ),
        dict(
            party="CA",
            type="organization",
            title="International Barcode of Life consortium",
            summary="DNA barcoding reference libraries and training.",
        ),
        dict(
            provider_party="BE",
            description="Our museum can host taxonomists for identification training.",
            host=dict(party="BI", title="Taxonomic capacity for Burundi"),
        ),
        dict(
            party="MZ",
            title="Taxonomy training for species inventories",
            problem="We needed taxonomists trained in species identification.",
        ),
    ),
    Problem(
        "biosafety",
        [f"{T}17"],
        [f"{S}BIOSAFETY"],
        ["equipment", "training"],
        [
            dict(
                party="MW",
                title="Laboratory detection of living modified organisms",
                problem="Our border agency cannot detect living modified organisms; we need a detection laboratory.",
            ),
            dict(
                party="BO",
                title="Detection of GMOs in imported grain",
                problem="We need laboratory equipment and training to detect genetically modified maize.",
            ),
        ],
        dict(
            provider_party="NO",
            title="Biosafety detection laboratory equipment",
            description="Equipment and training for detection of living modified organisms and GMO testing.",
            eligible_regions=["002", "419"],
        ),
        dict(
            party="ZA",
            title="Molecular biologist, GMO detection laboratories",
            summary="Set up laboratories for detection of living modified organisms.",
        ),
        dict(
            party="IT",
            type="organization",
            title="Biosafety reference laboratory network",
            summary="Training on GMO detection methods.",
        ),
        dict(
            provider_party="DE",
            description="Training in PCR detection of living modified organisms.",
            host=dict(party="TZ", title="Biosafety laboratory capacity"),
        ),
        dict(
            party="EC",
            title="GMO detection laboratory",
            problem="We needed equipment to detect living modified organisms.",
        ),
    ),
    Problem(
        "wetlands",
        [f"{T}11", f"{T}03"],
        [f"{S}INLAND-WATERS"],
        ["scientific", "technical"],
        [
            dict(
                party="KH",
                title="Managing the Tonle Sap floodplain wetlands",
                problem="Fisheries and flooded forests of the lake decline; we need wetland monitoring and water "
                "management.",
            ),
            dict(
                party="ZM",
                title="Wetland monitoring in the Kafue Flats",
                problem="Dam operations changed flooding of the floodplain wetlands; we need hydrological monitoring.",
                subjects=[f"{S}THEMATIC-PROGRAMMES"],
            ),
        ],
        dict(
            provider_organization="Wetlands Partnership",
            title="Wetland and floodplain monitoring grants",
            description="Support for wetland hydrology monitoring and floodplain management.",
        ),
        dict(
            party="NL", title="Wetland hydrologist", summary="Floodplain wetlands, flood regimes and water management."
        ),
        dict(
            party="CH",
            type="project",
            title="Floodplain wetlands restoration project",
            summary="Wetland monitoring and environmental flows for fisheries.",
        ),
        dict(
            provider_party="SE",
            description="Hydrological monitoring of wetlands and floodplains.",
            host=dict(party="MM", title="Ayeyarwady floodplain wetlands"),
        ),
        dict(
            party="BW",
            title="Okavango wetland monitoring",
            problem="We needed hydrological monitoring of the delta wetlands.",
        ),
    ),
    Problem(
        "pollinators",
        [f"{T}10"],
        [f"{S}AGRICULTURE"],
        ["technical", "scientific"],
        [
            dict(
                party="ET",
                title="Protecting pollinators in coffee and highland farms",
                problem="Bee colonies decline with pesticide use; farmers need pollinator-friendly practices.",
            ),
            dict(
                party="GT",
                title="Polinizadores y agricultura sostenible",
                problem=None,
                title_lang="es",
                problem_es="Las abejas nativas disminuyen; necesitamos prácticas agrícolas favorables a los "
                "polinizadores.",
            ),
        ],
        dict(
            provider_party="FR",
            title="Pollinator-friendly farming support",
            description={
                "en": "Technical support on bees, pollinators and agroecological practices.",
                "es": "Apoyo técnico sobre abejas, polinizadores y prácticas agroecológicas.",
            },
        ),
        dict(party="GB", title="Pollination ecologist", summary="Bee and pollinator monitoring in farmland."),
        dict(
            party="MX",
            type="organization",
            title="Red de polinizadores",
            lang="es",
            summary="Abejas nativas y polinizadores en la agricultura.",
        ),
        dict(
            provider_party="CH",
            description="Training on pollinator monitoring in farms.",
            host=dict(party="KE", title="Pollinators in smallholder farms"),
        ),
        dict(
            party="PE",
            title="Pollinators in Andean farming",
            problem="We needed pollinator-friendly practices for farmers.",
        ),
    ),
    Problem(
        "nbsap",
        ["GBF-GOAL-D"],
        [f"{S}NBSAP"],
        ["policy-advice", "capacity-building"],
        [
            dict(
                party="TD",
                title="Updating our national biodiversity strategy and action plan",
                problem="We must align our NBSAP and national targets with the Kunming-Montreal framework.",
            ),
            dict(
                party="HT",
                title="National targets and NBSAP revision",
                problem="We need advice to set national targets and revise the NBSAP.",
            ),
        ],
        dict(
            provider_organization="NBSAP Accelerator Partnership",
            title="NBSAP revision support",
            description="Advice to update national biodiversity strategies and action plans and national targets.",
            gbf_targets=[f"{T}14"],
            eligible_regions=["LDC"],
        ),
        dict(
            party="FR",
            title="Planning expert for biodiversity strategies",
            summary="Helped revise NBSAPs and set national targets.",
            gbf_targets=[f"{T}14"],
        ),
        dict(
            party="CH",
            type="organization",
            title="Biodiversity planning support network",
            summary="Peer support for NBSAP updating.",
            gbf_targets=[],
        ),
        dict(
            provider_party="DK",
            description="Advice on aligning NBSAP national targets.",
            host=dict(party="NE", title="NBSAP update"),
        ),
        dict(party="ML", title="Revision of the NBSAP", problem="We needed advice to update national targets."),
    ),
    Problem(
        "finance",
        [f"{T}19"],
        [f"{S}RESOURCE-MOBILIZATION"],
        ["financial", "policy-advice"],
        [
            dict(
                party="NP",
                title="A biodiversity finance plan",
                problem="We need to assess biodiversity expenditure and build a resource mobilization plan.",
            ),
            dict(
                party="BF",
                title="Mobiliser des ressources pour la biodiversité",
                problem=None,
                title_lang="fr",
                problem_fr="Nous devons élaborer un plan de financement de la biodiversité et réformer les "
                "subventions.",
                subjects=[f"{S}ECONOMICS"],
            ),
        ],
        dict(
            provider_organization="Biodiversity Finance Initiative",
            title="Biodiversity finance plans",
            description={
                "en": "Expenditure reviews, finance plans and subsidy reform.",
                "fr": "Revues des dépenses, plans de financement de la biodiversité, réforme des subventions.",
            },
        ),
        dict(
            party="GB",
            title="Environmental economist, biodiversity finance",
            summary="Biodiversity expenditure reviews and finance plans.",
        ),
        dict(
            party="FR",
            type="organization",
            title="Réseau finance biodiversité",
            lang="fr",
            summary="Financement de la biodiversité et réforme des subventions.",
        ),
        dict(
            provider_party="SE",
            description="Support for a biodiversity finance plan.",
            host=dict(party="UG", title="Biodiversity finance plan"),
        ),
        dict(party="MG", title="Finance plan for biodiversity", problem="We needed a biodiversity finance plan."),
    ),
    Problem(
        "cities",
        [f"{T}12"],
        [f"{S}CITIES"],
        ["technical"],
        [
            dict(
                party="CO",
                title="Green corridors in Medellín",
                problem="Urban biodiversity: we need green spaces and ecological corridors in the city.",
            ),
            dict(
                party="VN",
                title="Urban green spaces in Hanoi",
                problem="The city wants to plan parks and green infrastructure for urban biodiversity.",
            ),
        ],
        dict(
            provider_organization="Cities Biodiversity Network",
            title="Urban nature planning support",
            description="Technical support for urban green spaces, parks and corridors.",
        ),
        dict(
            party="SG",
            title="Urban ecologist, green infrastructure",
            summary="Urban biodiversity index and green spaces planning.",
        ),
        dict(
            party="DE",
            type="project",
            title="Urban green corridors project",
            summary="Ecological corridors and parks in cities.",
        ),
        dict(
            provider_party="NL",
            description="Planning of urban green infrastructure.",
            host=dict(party="PH", title="Urban parks in Manila"),
        ),
        dict(
            party="MX",
            title="Urban biodiversity in Guadalajara",
            problem="We needed green space planning for urban biodiversity.",
        ),
    ),
    Problem(
        "wildlife",
        [f"{T}04"],
        [],
        ["technical", "capacity-building"],
        [
            dict(
                party="BT",
                title="Reducing human-wildlife conflict with tigers and elephants",
                problem="Crop raiding elephants and livestock losses to tigers; we need conflict mitigation.",
            ),
            dict(
                party="NA",
                title="Human-wildlife conflict in communal conservancies",
                problem="Elephants and lions cause losses; conservancies need conflict mitigation measures.",
            ),
        ],
        dict(
            provider_party="GB",
            title="Human-wildlife conflict mitigation support",
            description="Fences, early warning and compensation schemes to reduce human-wildlife conflict.",
        ),
        dict(
            party="IN",
            title="Wildlife biologist, human-elephant conflict",
            summary="Conflict mitigation with elephants and tigers.",
        ),
        dict(
            party="KE",
            type="organization",
            title="Coexistence with wildlife trust",
            summary="Human-wildlife conflict and livestock protection.",
            subjects=[],
        ),
        dict(
            provider_party="CA",
            description="Early warning systems for elephants near farms.",
            host=dict(party="BW", title="Elephant conflict near farms"),
        ),
        dict(
            party="NP",
            title="Human-wildlife conflict with rhinos",
            problem="We needed conflict mitigation for communities near parks.",
        ),
    ),
    Problem(
        "tk",
        [f"{T}22"],
        [f"{S}TRADITIONAL-KNOWLEDGE"],
        ["capacity-building"],
        [
            dict(
                party="GY",
                title="Community protocols for indigenous peoples' traditional knowledge",
                problem="Indigenous communities want biocultural protocols to protect their traditional knowledge.",
            ),
            dict(
                party="PG",
                title="Documenting customary knowledge with local communities",
                problem="Communities need support to document traditional knowledge and customary practices.",
                subjects=[f"{S}TRADITIONAL-KNOWLEDGE", f"{S}GENDER"],
            ),
        ],
        dict(
            provider_organization="Indigenous Knowledge Fund",
            title="Biocultural community protocols grants",
            description="Grants for indigenous peoples and local communities to protect traditional knowledge.",
        ),
        dict(
            party="CA",
            title="Indigenous knowledge specialist",
            summary="Biocultural community protocols and traditional knowledge.",
        ),
        dict(
            party="AU",
            type="organization",
            title="Traditional knowledge documentation centre",
            summary="Supports communities documenting customary knowledge.",
        ),
        dict(
            provider_party="NO",
            description="Support for community protocols on traditional knowledge.",
            host=dict(party="SR", title="Traditional knowledge protocols"),
        ),
        dict(
            party="EC",
            title="Traditional knowledge protocols in the Amazon",
            problem="Indigenous communities needed biocultural protocols.",
        ),
    ),
]

# Entries that share only the vocabulary everyone uses: they must rank below the real fits.
GENERIC = [
    dict(
        party="CA",
        type="expert",
        title="Biodiversity conservation consultant",
        summary="National biodiversity conservation programmes and project support.",
        gbf_targets=["GBF-GOAL-D"],
        subjects=[f"{S}CROSS-CUTTING-ISSUES"],
    ),
    dict(
        party="JP",
        type="organization",
        title="International biodiversity support agency",
        summary="Support to developing countries for biodiversity projects.",
        subjects=[f"{S}CAPACITY-BUILDING"],
    ),
    dict(
        party="FR",
        type="project",
        title="Capacity development for biodiversity",
        summary="Training and technical support for national biodiversity programmes.",
        gbf_targets=[f"{T}20"],
    ),
    dict(
        party="DE",
        type="expert",
        title="Marine biologist (fisheries stock assessment)",
        summary="Fish stock assessment and fisheries management.",
        subjects=[f"{S}MARINE"],
        gbf_targets=[f"{T}05"],
    ),
    dict(
        party="SE",
        type="expert",
        title="Forest inventory specialist",
        summary="National forest inventories and remote sensing.",
        subjects=[f"{S}FORESTS"],
    ),
]
GRADE = {"opportunity": 3, "offer": 2, "expert": 2, "org": 2, "past": 1}


@dataclass
class Built:
    """What `build` wrote: the requests to rank, each problem's graded candidates, what must never match."""

    requests: list[tuple[str, uuid.UUID]] = field(default_factory=list)  # (problem, request id)
    relevance: dict[str, dict[uuid.UUID, int]] = field(default_factory=dict)  # problem -> candidate -> grade
    never: set[uuid.UUID] = field(default_factory=set)
    opportunities: dict[str, uuid.UUID] = field(default_factory=dict)
    open_requests: dict[str, set[uuid.UUID]] = field(default_factory=dict)  # problem -> its live requests


def _text(value: str | dict[str, str] | None, lang: str = "en") -> dict[str, str] | None:
    if isinstance(value, dict):
        return value
    return {lang: value} if value else None


async def build(session: Any) -> Built:
    """Insert the set (timestamps spread over the last year) and return its labels."""
    out = Built()
    n = 0

    def at() -> datetime:
        nonlocal n
        n += 1
        return NOW - timedelta(days=(n * 7) % 360, minutes=n)

    async def put(model: Any, values: dict[str, Any]) -> uuid.UUID:
        stamp = at()
        row = {"id": uuid.uuid4(), "created_at": stamp, "updated_at": stamp, **values}
        await session.execute(insert(model.__table__).values(row))
        return row["id"]

    async def record(p: Problem | None, spec: dict[str, Any]) -> uuid.UUID:
        spec = dict(spec)
        status = spec.pop("status", "published")
        lang = spec.pop("lang", "en")
        return await put(Record, {"party": spec.pop("party"), "type": spec.pop("type", "expert"), "status": status,
                                  "revision": 1 if status in ("published", "withdrawn") else 0,
                                  "title": {lang: spec.pop("title")}, "summary": _text(spec.pop("summary", None), lang),
                                  "languages": [lang], "gbf_targets": spec.pop("gbf_targets", p.gbf if p else []),
                                  "subjects": spec.pop("subjects", p.subjects if p else []), **spec})  # fmt: skip

    async def request(p: Problem, spec: dict[str, Any], status: str) -> uuid.UUID:
        spec = dict(spec)
        lang = spec.pop("title_lang", "en")
        problem = spec.pop("problem", None)
        problem_lx = {k.removeprefix("problem_"): spec.pop(k) for k in list(spec) if k.startswith("problem_")}
        return await put(CooperationRequest, {
            "party": spec.pop("party"), "title": {lang: spec.pop("title")},
            "problem": _text(problem) or problem_lx or None, "assistance_types": spec.pop("assistance_types", p.assist),
            "gbf_targets": spec.pop("gbf_targets", p.gbf), "subjects": spec.pop("subjects", p.subjects),
            "status": status, **spec})  # fmt: skip

    async def opportunity(p: Problem, spec: dict[str, Any]) -> uuid.UUID:
        spec = dict(spec)
        return await put(Opportunity, {
            "provider_party": spec.pop("provider_party", None), "provider_organization": spec.pop(
                "provider_organization", None), "title": {"en": spec.pop("title")},
            "description": _text(spec.pop("description", None)), "assistance_types": spec.pop("assistance_types",
                                                                                               p.assist),
            "gbf_targets": spec.pop("gbf_targets", p.gbf), "subjects": spec.pop("subjects", p.subjects),
            "status": spec.pop("status", "open"), **spec})  # fmt: skip

    for p in PROBLEMS:
        grades: dict[uuid.UUID, int] = {}
        live: set[uuid.UUID] = set()
        for spec in p.requests:
            rid = await request(p, spec, "open")
            out.requests.append((p.key, rid))
            live.add(rid)
        opp = await opportunity(p, p.opportunity)
        grades[opp] = GRADE["opportunity"]
        out.opportunities[p.key] = opp
        grades[await record(p, {"type": "expert", **p.expert})] = GRADE["expert"]
        grades[await record(p, p.org)] = GRADE["org"]
        host = p.offer["host"]
        host_id = await request(p, {"party": host["party"], "title": host["title"]}, "in-discussion")
        live.add(host_id)
        offer_row = {"request_id": host_id, "provider_party": p.offer["provider_party"],
                     "description": {"en": p.offer["description"]}, "status": "proposed"}  # fmt: skip
        offer = await put(CooperationOffer, offer_row)
        grades[offer] = GRADE["offer"]
        past = await request(p, p.past, "matched")
        await put(CooperationOffer, {"request_id": past, "provider_party": "SE",
                                     "description": {"en": "We helped."}, "status": "accepted"})  # fmt: skip
        grades[past] = GRADE["past"]
        out.relevance[p.key] = grades
        out.open_requests[p.key] = live
        for spec in p.never:
            spec = dict(spec)
            kind = spec.pop("kind")
            if kind == "opportunity":
                out.never.add(await opportunity(p, spec))
            elif kind == "record":
                out.never.add(await record(p, spec))
            else:
                out.never.add(await request(p, spec, spec.pop("status")))
    for spec in GENERIC:
        await record(None, spec)
    await session.flush()
    return out


def precision_at(k: int, ranked: list[uuid.UUID], grades: dict[uuid.UUID, int]) -> float:
    """Share of the first k ranked that are relevant (grade > 0)."""
    return sum(1 for i in ranked[:k] if grades.get(i, 0) > 0) / k


def ndcg_at(k: int, ranked: list[uuid.UUID], grades: dict[uuid.UUID, int]) -> float:
    """Normalised discounted cumulative gain with graded relevance (gain 2^grade - 1)."""

    def dcg(gains: list[int]) -> float:
        return sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(gains[:k]))

    ideal = dcg(sorted(grades.values(), reverse=True))
    return dcg([grades.get(i, 0) for i in ranked]) / ideal if ideal else 0.0
