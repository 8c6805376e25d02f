"""Catalog values as data: the ids the service accepts in a referral, with the labels people say.

Sources (see ``../shared/reference``): "Referral resources" (products, services, industries, category
solutions, customer sizes), the connector definition (assistance request codes, registration enums),
"Create a referral" (partner roles, FY24 solution areas and plays), ISO 3166-1 and ISO 4217 (the
Debian ``iso-codes`` 4.15 tables). The MCP layer exposes every entry of ``CATALOGS`` as a resource
(``catalog://products`` ...), and the write models check ids against them.

Lookups are forgiving about how a person types a value and strict about what is sent: "dynamics 365
enterprise" resolves to ``Dynamics365Enterprise``; an unknown value raises ``InvalidInput`` naming
the closest ids.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pcref_mcp.errors import InvalidInput
from pcref_mcp.referrals.models import (
    AssistanceRequestCode,
    ContractTerm,
    PricingModel,
    PrimaryDeploymentOn,
    RegistrationType,
)

__all__ = [
    "ASSISTANCE_REQUEST_CODES",
    "CATALOGS",
    "CONTRACT_TERMS",
    "COUNTRIES",
    "COUNTRY_ALIASES",
    "CURRENCIES",
    "CUSTOMER_SIZES",
    "DOLLAR_CURRENCIES",
    "INDUSTRIES",
    "PARTNER_ROLES",
    "PLAYS_BY_AREA",
    "PRICING_MODELS",
    "PRIMARY_DEPLOYMENT",
    "PRODUCTS",
    "REGISTRATION_TYPES",
    "SERVICES",
    "SOLUTIONS",
    "SOLUTION_AREAS",
    "SOLUTION_PLAYS",
    "SOLUTION_PROFILE_ID",
    "Catalog",
    "CatalogValue",
    "country_code",
    "currency_code",
    "is_solution_profile_id",
    "lookup",
]

# A partner's marketplace solution as the service names it: "SOL-6115380-IPC", or a GUID.
SOLUTION_PROFILE_ID = re.compile(
    r"SOL-[A-Z0-9]+-[A-Z0-9]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
)


@dataclass(frozen=True)
class CatalogValue:
    """One allowed id; ``label`` is how a person says it, ``parents`` groups it (a play's areas)."""

    id: str
    label: str | None = None
    parents: tuple[str, ...] = ()


@dataclass(frozen=True)
class Catalog:
    """A named list of allowed ids. ``legacy`` ids are read from old referrals but never sent."""

    name: str
    noun: str
    description: str
    values: tuple[CatalogValue, ...]
    legacy: tuple[CatalogValue, ...] = ()
    #: other words people use for one id ("Other" → GeneralOrOther); each names exactly one id
    aliases: Mapping[str, str] = field(default_factory=dict)
    _index: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for value in self.values:
            for key in (value.id, value.label):
                if key:
                    self._index.setdefault(_fold(key), value.id)
        for alias, id in self.aliases.items():
            assert id in self, f"{self.name}: alias {alias!r} names no id"
            self._index.setdefault(_fold(alias), id)

    @property
    def uri(self) -> str:
        return f"catalog://{self.name}"

    def ids(self) -> tuple[str, ...]:
        return tuple(value.id for value in self.values)

    def __contains__(self, item: object) -> bool:
        return any(value.id == item for value in self.values)

    def __len__(self) -> int:
        return len(self.values)

    def label(self, id: str) -> str:
        """The label of ``id`` (the id itself when it has none)."""
        for value in (*self.values, *self.legacy):
            if value.id == id:
                return value.label or value.id
        return id

    def is_legacy(self, id: str) -> bool:
        return any(value.id == id for value in self.legacy)

    def lookup(self, text: str, *, field: str | None = None) -> str:
        """The canonical id for ``text`` (case, spaces and punctuation ignored), or ``InvalidInput``."""
        found = self._index.get(_fold(text)) if isinstance(text, str) else None
        if found is not None:
            return found
        raise InvalidInput(
            self.unknown_message(text, field=field),
            field=field or self.name,
            value=text,
            allowed=self.close_matches(text) or self.ids(),
        )

    def close_matches(self, text: object, *, n: int = 3) -> list[str]:
        """Up to ``n`` ids that look like ``text`` (difflib on the folded forms)."""
        if not isinstance(text, str):
            return []
        matches = difflib.get_close_matches(_fold(text), list(self._index), n=n * 2, cutoff=0.6)
        return list(dict.fromkeys(self._index[match] for match in matches))[:n]

    def unknown_message(self, text: object, *, field: str | None = None) -> str:
        """``products 'Dynamcs' is not a known product; did you mean 'Dynamics365Business'? ...``."""
        subject = f"{field or self.name} {text!r}"
        legacy = isinstance(text, str) and _fold(text) in {_fold(value.id) for value in self.legacy}
        if legacy:
            return (
                f"{subject} is an older {self.noun} the service no longer accepts; "
                f"use one of: {_quoted(self.ids())}."
            )
        if len(self.values) <= 12:
            return f"{subject} is not a known {self.noun}; use one of: {_quoted(self.ids())}."
        close = self.close_matches(text)
        if close:
            return f"{subject} is not a known {self.noun}; did you mean {_quoted(close, last='or')}? All values: {self.uri}."
        return (
            f"{subject} is not a known {self.noun}; see {self.uri} for the {len(self.values)} allowed values."
        )

    def to_json(self) -> dict[str, Any]:
        """Same as ``as_resource``; the name the MCP resources layer calls."""
        return self.as_resource()

    def as_resource(self) -> dict[str, Any]:
        """The JSON the MCP layer serves for ``catalog://<name>``."""
        values: list[dict[str, Any]] = []
        for value in self.values:
            entry: dict[str, Any] = {"id": value.id}
            if value.label:
                entry["label"] = value.label
            if value.parents:
                entry["parents"] = list(value.parents)
            values.append(entry)
        resource: dict[str, Any] = {"name": self.name, "description": self.description, "values": values}
        if self.legacy:
            resource["readOnlyValues"] = [value.id for value in self.legacy]
        return resource


def lookup(catalog: str, text: str, *, field: str | None = None) -> str:
    """``lookup("products", "dynamics 365 enterprise") == "Dynamics365Enterprise"``."""
    return CATALOGS[catalog].lookup(text, field=field)


def country_code(text: str, *, field: str = "country") -> str:
    """An ISO 3166-1 alpha-2 code from a code (any case), an alpha-3 code, an English country name or
    a name people commonly use instead (``COUNTRY_ALIASES``: "UK" -> GB, "Holland" -> NL)."""
    if isinstance(text, str):
        code = text.strip().upper()
        if len(code) == 2 and code in COUNTRIES:
            return code
        found = COUNTRY_ALIASES.get(_fold(text))
        if found is None and len(code) == 3:
            found = COUNTRY_ALPHA3.get(code)
        if found is None and len(code) != 2:
            found = COUNTRIES._index.get(_fold(text))
        if found is not None:
            return found
    raise InvalidInput(
        f"{field} {text!r} is not an ISO 3166 alpha-2 code; use a two-letter code such as "
        f"{_country_example(text)!r}.",
        field=field,
        value=text,
        allowed=f"ISO 3166-1 alpha-2 codes ({COUNTRIES.uri})",
    )


def currency_code(text: str, *, field: str = "currency") -> str:
    """An ISO 4217 code from a code in any case (``usd`` -> ``USD``) or its English name."""
    if isinstance(text, str):
        code = text.strip().upper()
        if code in CURRENCIES:
            return code
        if len(code) != 3:
            found = CURRENCIES._index.get(_fold(text))
            if found is not None:
                return found
    raise InvalidInput(
        f"{field} {text!r} is not an ISO 4217 currency code; use a three-letter code such as "
        f"{_currency_example(text)!r}.",
        field=field,
        value=text,
        allowed=f"ISO 4217 codes ({CURRENCIES.uri})",
    )


def is_solution_profile_id(text: object) -> bool:
    """True for a marketplace solution id (``SOL-6115380-IPC`` or a GUID), not a category id."""
    return isinstance(text, str) and SOLUTION_PROFILE_ID.fullmatch(text.strip()) is not None


# --- helpers --------------------------------------------------------------------------------------


def _fold(text: str) -> str:
    """Case, accents, spaces and punctuation ignored, "&" read as "and": "Dynamics 365 Enterprise" ->
    dynamics365enterprise, "Türkiye" -> turkiye."""
    plain = unicodedata.normalize("NFKD", text.casefold().replace("&", "and"))
    return re.sub(r"[^0-9a-z]", "", "".join(c for c in plain if not unicodedata.combining(c)))


def _quoted(items: Iterable[str], *, last: str = "") -> str:
    quoted = [repr(item) for item in items]
    if last and len(quoted) > 1:
        return f"{', '.join(quoted[:-1])} {last} {quoted[-1]}"
    return ", ".join(quoted)


def _country_example(text: object) -> str:
    if isinstance(text, str):
        code = COUNTRY_ALPHA3.get(text.strip().upper())
        if code:
            return code
        close = COUNTRIES.close_matches(text, n=1)
        if close:
            return close[0]
    return "US"


# Codes people mean most often; a typo like "US$" or "eur0" is matched against these first.
_COMMON_CURRENCIES = (
    "USD",
    "EUR",
    "GBP",
    "JPY",
    "CAD",
    "AUD",
    "INR",
    "CHF",
    "CNY",
    "BRL",
    "MXN",
    "SEK",
    "NZD",
)


def _currency_example(text: object) -> str:
    if isinstance(text, str):
        letters = re.sub(r"[^A-Z]", "", text.upper())
        for code in _COMMON_CURRENCIES:
            if len(letters) >= 2 and code.startswith(letters[:2]):
                return code
        close = CURRENCIES.close_matches(text, n=1)
        if close:
            return close[0]
    return "USD"


def _values(*items: str | tuple[str, str]) -> tuple[CatalogValue, ...]:
    return tuple(CatalogValue(item) if isinstance(item, str) else CatalogValue(*item) for item in items)


def _from_enum(enum: Iterable[Any], labels: dict[str, str]) -> tuple[CatalogValue, ...]:
    return tuple(CatalogValue(str(member), labels.get(str(member))) for member in enum)


# ISO 4217 codes people write with a bare "$": a "$" amount is read only where one of these is meant.
DOLLAR_CURRENCIES = frozenset(
    {"USD", "AUD", "CAD", "NZD", "SGD", "HKD", "MXN", "TWD", "BRL", "CLP", "COP", "ARS"}
)


# --- referral requirements ("Referral resources") -------------------------------------------------

PRODUCTS = Catalog(
    "products",
    "product",
    "Microsoft products the customer is interested in (details.requirements.products[].id).",
    _values(
        "Azure",
        ("EnterpriseMobilityAndSecurity", "Enterprise Mobility + Security"),
        "Exchange",
        ("DeveloperTools", "Developer Tools"),
        ("Dynamics365Business", "Dynamics 365 Business"),
        ("Dynamics365Enterprise", "Dynamics 365 Enterprise"),
        ("DynamicsAX,GP,NAV,SL", "Dynamics AX, GP, NAV, SL"),
        ("Microsoft365", "Microsoft 365"),
        "Office",
        ("PowerBI", "Power BI"),
        "Project",
        "SharePoint",
        ("SkypeForBusiness", "Skype for Business"),
        "Surface",
        ("SurfaceHub", "Surface Hub"),
        "SQL",
        "Teams",
        "Visio",
        "Windows",
        "Yammer",
    ),
)

SERVICES = Catalog(
    "services",
    "service",
    "Kinds of partner service the customer needs (details.requirements.services[].id).",
    _values(
        ("ConsultingAndProfessional", "Consulting and professional"),
        ("CustomSolution(ISV)", "Custom solution (ISV)"),
        ("DeploymentOrMigration", "Deployment or migration"),
        "Hardware",
        "Integration",
        ("IPServices(ISV)", "IP services (ISV)"),
        ("LearningAndCertification", "Learning and certification"),
        "Licensing",
        ("ManagedServices", "Managed services"),
        ("ProjectServices", "Project services"),
    ),
)

INDUSTRIES = Catalog(
    "industries",
    "industry",
    "The customer's industry (details.requirements.industries[].id); the ids contain spaces and '&'.",
    _values(
        "Agriculture, Forestry, & Fishing",
        "Communications & Media",
        "Education",
        "Financial Services",
        "Government",
        "Healthcare",
        "Hospitality",
        "Manufacturing",
        "Power & Utilities",
        "Public Safety and National Security",
        "Retail & Consumer Goods",
        "Services",
        "Travel & Transportation",
        "Wholesale & Distribution",
    ),
)

SOLUTIONS = Catalog(
    "solutions",
    "category solution",
    "Pre-defined solution categories (details.requirements.solutions[] with type 'Category'). "
    "A partner's own marketplace solution is referenced by its id (e.g. SOL-6115380-IPC) with type 'Name'.",
    _values(
        ("AdvancedAnalytics", "Advanced analytics"),
        ("ApplicationIntegration", "Application integration"),
        ("ArtificialIntelligence", "Artificial intelligence"),
        ("AzureSecurityOperationManagement", "Azure security operation management"),
        ("AzureStack", "Azure Stack"),
        ("BackupDisasterRecovery", "Backup and disaster recovery"),
        ("BigData", "Big data"),
        "Blockchain",
        "Chatbot",
        ("CloudDatabaseMigration", "Cloud database migration"),
        ("CloudMigration", "Cloud migration"),
        ("CloudVoice", "Cloud voice"),
        ("CognitiveServices", "Cognitive services"),
        ("CompetitiveDatabaseMigration", "Competitive database migration"),
        "Containers",
        ("DataWarehouse", "Data warehouse"),
        ("DatabaseonLinux", "Database on Linux"),
        ("DevelopmentandTest", "Development and test"),
        "DevOps",
        ("DigitalMedia", "Digital media"),
        ("Dynamics365forCustomerService", "Dynamics 365 for Customer Service"),
        ("Dynamics365forFieldService", "Dynamics 365 for Field Service"),
        ("Dynamics365forFinanceOperations", "Dynamics 365 for Finance and Operations"),
        ("Dynamics365forRetail", "Dynamics 365 for Retail"),
        ("Dynamics365forSales", "Dynamics 365 for Sales"),
        ("Dynamics365forTalent", "Dynamics 365 for Talent"),
        ("DynamicsonAzure", "Dynamics on Azure"),
        ("EnterpriseBusinessIntelligence", "Enterprise business intelligence"),
        "Gaming",
        ("HighPerformanceComputing", "High performance computing"),
        ("HybridStorage", "Hybrid storage"),
        ("IdentityandAccessManagement", "Identity and access management"),
        ("InformationManagement", "Information management"),
        ("InternetofThings", "Internet of Things"),
        ("MachineLearning", "Machine learning"),
        ("Microserviceapplications", "Microservice applications"),
        ("MobileApplications", "Mobile applications"),
        ("MySQLPostgresMigrationtoAzure", "MySQL/Postgres migration to Azure"),
        "Networking",
        ("NoSQLMigration", "NoSQL migration"),
        ("RedhatonAzure", "Red Hat on Azure"),
        ("RegulatoryComplianceGDPR", "Regulatory compliance (GDPR)"),
        ("SAPonAzure", "SAP on Azure"),
        ("ServerlessComputing", "Serverless computing"),
        ("SharepointonAzure", "SharePoint on Azure"),
        ("SQLServerUpgrade", "SQL Server upgrade"),
        ("ThreatProtection", "Threat protection"),
        ("WebDevelopment", "Web development"),
    ),
)

CUSTOMER_SIZES = Catalog(
    "customer_sizes",
    "customer size",
    "Number of employees at the customer (customerProfile.size). Older buckets appear on old referrals "
    "and are accepted on read only.",
    _values(
        ("1to9employees", "1 to 9 employees"),
        ("10to50employees", "10 to 50 employees"),
        ("51to250employees", "51 to 250 employees"),
        ("251to1000employees", "251 to 1000 employees"),
        ("1001to5000employees", "1001 to 5000 employees"),
        ("5001to10000employees", "5001 to 10000 employees"),
        ("10001to20000employees", "10001 to 20000 employees"),
        ("Morethan20000employees", "More than 20000 employees"),
    ),
    legacy=_values("1to50employees", "51to500employees", "Morethan500employees"),
)

# --- co-sell --------------------------------------------------------------------------------------

ASSISTANCE_REQUEST_CODES = Catalog(
    "assistance_request_codes",
    "assistance request code",
    "The help a partner asks Microsoft for on a co-sell deal (inviteContext.assistanceRequestCode). "
    "'Unknown' is set by the service only.",
    _from_enum(
        (code for code in AssistanceRequestCode if code is not AssistanceRequestCode.UNKNOWN),
        {
            "GeneralOrOther": "General or other",
            "CustomerTechnicalArchitecture": "Customer technical architecture",
            "ProofOfConceptOrDemo": "Proof of concept / Demo",
            "QuotesOrLicensing": "Quotes or licensing",
            "PostSalesCustomerSuccess": "Post-sales customer success",
            "WorkloadSpecificValueProposition": "Workload-specific value proposition",
        },
    ),
    aliases={
        "Other": "GeneralOrOther",
        "General": "GeneralOrOther",
        "Proof of concept": "ProofOfConceptOrDemo",
        "POC": "ProofOfConceptOrDemo",
        "Demo": "ProofOfConceptOrDemo",
        "Licensing": "QuotesOrLicensing",
        "Quotes": "QuotesOrLicensing",
        "Technical architecture": "CustomerTechnicalArchitecture",
        "Architecture": "CustomerTechnicalArchitecture",
        "Customer success": "PostSalesCustomerSuccess",
        "Value proposition": "WorkloadSpecificValueProposition",
    },
)

PARTNER_ROLES = Catalog(
    "partner_roles",
    "partner role",
    "The partner's role on a Services co-sell referral (required for Services co-sell only). "
    "The wire form is not documented; the ids are the documented labels.",
    _values(
        "Presales envisioning",
        "Solution design",
        "Proof of concept",
        "Business strategy",
        "Deployment services",
        "Adoption and change management",
        "Transaction",
        "Managed services",
    ),
)

# FY24 table from "Create a referral": (solution area, solution play). One play can sit in two areas.
_FY24_PLAYS: tuple[tuple[str, str], ...] = (
    ("Business Applications", "Accelerate Innovation with Low Code"),
    ("Business Applications", "Accelerate Revenue Generation"),
    ("Business Applications", "Modernize Service"),
    ("Business Applications", "Optimize Finance and Supply Chain"),
    ("Business Applications", "SMB Scale Business Operations"),
    ("Data and AI", "Power Business Decisions with Cloud Scale Analytics"),
    ("Data and AI", "Build and Modernize AI Apps"),
    ("Digital and Application Innovation", "Migrate Enterprise Apps"),
    ("Digital and Application Innovation", "Build and Modernize AI Apps"),
    ("Digital and Application Innovation", "Accelerate Developer Productivity"),
    ("Digital and Application Innovation", "Accelerate Innovation with Integration Services"),
    ("Infrastructure", "Migrate and Secure Windows Server and SQL Server"),
    ("Infrastructure", "Migrate SAP"),
    ("Infrastructure", "Innovate with HPC, AI Infrastructure"),
    ("Infrastructure", "Migrate Linux Estate"),
    ("Infrastructure", "Migrate Oracle"),
    ("Modern Work", "Frontline Workers"),
    ("Modern Work", "Employee Experience"),
    ("Modern Work", "Secure Productivity"),
    ("Modern Work", "Converged Communications"),
    ("Modern Work", "Cloud Endpoints"),
    ("Modern Work", "Modernize with Surface"),
    ("Security", "Threat protection with XDR and SIEM"),
    ("Security", "Multi Cloud Security"),
    ("Security", "Data Security"),
    ("Security", "Data Governance"),
    ("Security", "Modern Sec Ops"),
    ("Security", "Secure Identity and takeout Okta and Ping"),
    ("Unified Support", "Build a Strong Foundation with Unified"),
    ("Unified Support", "Drive Cloud Success with Enhanced Solutions"),
)

# solution area -> its plays, in the documented order
PLAYS_BY_AREA: dict[str, tuple[str, ...]] = {
    area: tuple(play for a, play in _FY24_PLAYS if a == area)
    for area in dict.fromkeys(a for a, _ in _FY24_PLAYS)
}

SOLUTION_AREAS = Catalog(
    "solution_areas",
    "solution area",
    "FY24 solution areas (required for Services co-sell only); see catalog://solution_plays for their plays.",
    _values(*PLAYS_BY_AREA),
)

SOLUTION_PLAYS = Catalog(
    "solution_plays",
    "solution play",
    "FY24 solution plays; 'parents' lists the solution area(s) each belongs to.",
    tuple(
        CatalogValue(play, parents=tuple(area for area, p in _FY24_PLAYS if p == play))
        for play in dict.fromkeys(play for _, play in _FY24_PLAYS)
    ),
)

# --- deal registration (Azure IP co-sell) ---------------------------------------------------------

REGISTRATION_TYPES = Catalog(
    "registration_types",
    "registration type",
    "Deal registration type (registrations[].type); only Azure IP co-sell exists.",
    _from_enum(RegistrationType, {"AzureIPCoSell": "Azure IP co-sell"}),
)

CONTRACT_TERMS = Catalog(
    "contract_terms",
    "contract term",
    "Deal registration contract term: Finite needs an end date; Perpetual has none (spread over 6 years).",
    _from_enum(ContractTerm, {}),
)

PRICING_MODELS = Catalog(
    "pricing_models",
    "pricing model",
    "How the registered solution is priced (solutionDetails[].pricingModel).",
    _from_enum(PricingModel, {"PayAsYouGo": "Pay as you go"}),
)

PRIMARY_DEPLOYMENT = Catalog(
    "primary_deployment",
    "primary deployment",
    "Whose Azure subscription the solution mainly runs in (solutionDetails[].primaryDeploymentOn).",
    _from_enum(PrimaryDeploymentOn, {"Customer": "Customer's tenant", "Partner": "Partner's tenant"}),
)

# --- ISO 3166-1 and ISO 4217 (Debian iso-codes 4.15.0) --------------------------------------------

# alpha-2 code -> English short name
COUNTRY_NAMES: dict[str, str] = {
    "AD": "Andorra",
    "AE": "United Arab Emirates",
    "AF": "Afghanistan",
    "AG": "Antigua and Barbuda",
    "AI": "Anguilla",
    "AL": "Albania",
    "AM": "Armenia",
    "AO": "Angola",
    "AQ": "Antarctica",
    "AR": "Argentina",
    "AS": "American Samoa",
    "AT": "Austria",
    "AU": "Australia",
    "AW": "Aruba",
    "AX": "Åland Islands",
    "AZ": "Azerbaijan",
    "BA": "Bosnia and Herzegovina",
    "BB": "Barbados",
    "BD": "Bangladesh",
    "BE": "Belgium",
    "BF": "Burkina Faso",
    "BG": "Bulgaria",
    "BH": "Bahrain",
    "BI": "Burundi",
    "BJ": "Benin",
    "BL": "Saint Barthélemy",
    "BM": "Bermuda",
    "BN": "Brunei Darussalam",
    "BO": "Bolivia",
    "BQ": "Bonaire, Sint Eustatius and Saba",
    "BR": "Brazil",
    "BS": "Bahamas",
    "BT": "Bhutan",
    "BV": "Bouvet Island",
    "BW": "Botswana",
    "BY": "Belarus",
    "BZ": "Belize",
    "CA": "Canada",
    "CC": "Cocos (Keeling) Islands",
    "CD": "Congo, The Democratic Republic of the",
    "CF": "Central African Republic",
    "CG": "Congo",
    "CH": "Switzerland",
    "CI": "Côte d'Ivoire",
    "CK": "Cook Islands",
    "CL": "Chile",
    "CM": "Cameroon",
    "CN": "China",
    "CO": "Colombia",
    "CR": "Costa Rica",
    "CU": "Cuba",
    "CV": "Cabo Verde",
    "CW": "Curaçao",
    "CX": "Christmas Island",
    "CY": "Cyprus",
    "CZ": "Czechia",
    "DE": "Germany",
    "DJ": "Djibouti",
    "DK": "Denmark",
    "DM": "Dominica",
    "DO": "Dominican Republic",
    "DZ": "Algeria",
    "EC": "Ecuador",
    "EE": "Estonia",
    "EG": "Egypt",
    "EH": "Western Sahara",
    "ER": "Eritrea",
    "ES": "Spain",
    "ET": "Ethiopia",
    "FI": "Finland",
    "FJ": "Fiji",
    "FK": "Falkland Islands (Malvinas)",
    "FM": "Micronesia, Federated States of",
    "FO": "Faroe Islands",
    "FR": "France",
    "GA": "Gabon",
    "GB": "United Kingdom",
    "GD": "Grenada",
    "GE": "Georgia",
    "GF": "French Guiana",
    "GG": "Guernsey",
    "GH": "Ghana",
    "GI": "Gibraltar",
    "GL": "Greenland",
    "GM": "Gambia",
    "GN": "Guinea",
    "GP": "Guadeloupe",
    "GQ": "Equatorial Guinea",
    "GR": "Greece",
    "GS": "South Georgia and the South Sandwich Islands",
    "GT": "Guatemala",
    "GU": "Guam",
    "GW": "Guinea-Bissau",
    "GY": "Guyana",
    "HK": "Hong Kong",
    "HM": "Heard Island and McDonald Islands",
    "HN": "Honduras",
    "HR": "Croatia",
    "HT": "Haiti",
    "HU": "Hungary",
    "ID": "Indonesia",
    "IE": "Ireland",
    "IL": "Israel",
    "IM": "Isle of Man",
    "IN": "India",
    "IO": "British Indian Ocean Territory",
    "IQ": "Iraq",
    "IR": "Iran",
    "IS": "Iceland",
    "IT": "Italy",
    "JE": "Jersey",
    "JM": "Jamaica",
    "JO": "Jordan",
    "JP": "Japan",
    "KE": "Kenya",
    "KG": "Kyrgyzstan",
    "KH": "Cambodia",
    "KI": "Kiribati",
    "KM": "Comoros",
    "KN": "Saint Kitts and Nevis",
    "KP": "North Korea",
    "KR": "South Korea",
    "KW": "Kuwait",
    "KY": "Cayman Islands",
    "KZ": "Kazakhstan",
    "LA": "Laos",
    "LB": "Lebanon",
    "LC": "Saint Lucia",
    "LI": "Liechtenstein",
    "LK": "Sri Lanka",
    "LR": "Liberia",
    "LS": "Lesotho",
    "LT": "Lithuania",
    "LU": "Luxembourg",
    "LV": "Latvia",
    "LY": "Libya",
    "MA": "Morocco",
    "MC": "Monaco",
    "MD": "Moldova",
    "ME": "Montenegro",
    "MF": "Saint Martin (French part)",
    "MG": "Madagascar",
    "MH": "Marshall Islands",
    "MK": "North Macedonia",
    "ML": "Mali",
    "MM": "Myanmar",
    "MN": "Mongolia",
    "MO": "Macao",
    "MP": "Northern Mariana Islands",
    "MQ": "Martinique",
    "MR": "Mauritania",
    "MS": "Montserrat",
    "MT": "Malta",
    "MU": "Mauritius",
    "MV": "Maldives",
    "MW": "Malawi",
    "MX": "Mexico",
    "MY": "Malaysia",
    "MZ": "Mozambique",
    "NA": "Namibia",
    "NC": "New Caledonia",
    "NE": "Niger",
    "NF": "Norfolk Island",
    "NG": "Nigeria",
    "NI": "Nicaragua",
    "NL": "Netherlands",
    "NO": "Norway",
    "NP": "Nepal",
    "NR": "Nauru",
    "NU": "Niue",
    "NZ": "New Zealand",
    "OM": "Oman",
    "PA": "Panama",
    "PE": "Peru",
    "PF": "French Polynesia",
    "PG": "Papua New Guinea",
    "PH": "Philippines",
    "PK": "Pakistan",
    "PL": "Poland",
    "PM": "Saint Pierre and Miquelon",
    "PN": "Pitcairn",
    "PR": "Puerto Rico",
    "PS": "Palestine, State of",
    "PT": "Portugal",
    "PW": "Palau",
    "PY": "Paraguay",
    "QA": "Qatar",
    "RE": "Réunion",
    "RO": "Romania",
    "RS": "Serbia",
    "RU": "Russian Federation",
    "RW": "Rwanda",
    "SA": "Saudi Arabia",
    "SB": "Solomon Islands",
    "SC": "Seychelles",
    "SD": "Sudan",
    "SE": "Sweden",
    "SG": "Singapore",
    "SH": "Saint Helena, Ascension and Tristan da Cunha",
    "SI": "Slovenia",
    "SJ": "Svalbard and Jan Mayen",
    "SK": "Slovakia",
    "SL": "Sierra Leone",
    "SM": "San Marino",
    "SN": "Senegal",
    "SO": "Somalia",
    "SR": "Suriname",
    "SS": "South Sudan",
    "ST": "Sao Tome and Principe",
    "SV": "El Salvador",
    "SX": "Sint Maarten (Dutch part)",
    "SY": "Syria",
    "SZ": "Eswatini",
    "TC": "Turks and Caicos Islands",
    "TD": "Chad",
    "TF": "French Southern Territories",
    "TG": "Togo",
    "TH": "Thailand",
    "TJ": "Tajikistan",
    "TK": "Tokelau",
    "TL": "Timor-Leste",
    "TM": "Turkmenistan",
    "TN": "Tunisia",
    "TO": "Tonga",
    "TR": "Türkiye",
    "TT": "Trinidad and Tobago",
    "TV": "Tuvalu",
    "TW": "Taiwan",
    "TZ": "Tanzania",
    "UA": "Ukraine",
    "UG": "Uganda",
    "UM": "United States Minor Outlying Islands",
    "US": "United States",
    "UY": "Uruguay",
    "UZ": "Uzbekistan",
    "VA": "Holy See (Vatican City State)",
    "VC": "Saint Vincent and the Grenadines",
    "VE": "Venezuela",
    "VG": "Virgin Islands, British",
    "VI": "Virgin Islands, U.S.",
    "VN": "Vietnam",
    "VU": "Vanuatu",
    "WF": "Wallis and Futuna",
    "WS": "Samoa",
    "YE": "Yemen",
    "YT": "Mayotte",
    "ZA": "South Africa",
    "ZM": "Zambia",
    "ZW": "Zimbabwe",
}

# alpha-3 code -> alpha-2 code ("DEU" -> DE): read as meant, it cannot mean anything else.
COUNTRY_ALPHA3: dict[str, str] = {
    "ABW": "AW",
    "AFG": "AF",
    "AGO": "AO",
    "AIA": "AI",
    "ALA": "AX",
    "ALB": "AL",
    "AND": "AD",
    "ARE": "AE",
    "ARG": "AR",
    "ARM": "AM",
    "ASM": "AS",
    "ATA": "AQ",
    "ATF": "TF",
    "ATG": "AG",
    "AUS": "AU",
    "AUT": "AT",
    "AZE": "AZ",
    "BDI": "BI",
    "BEL": "BE",
    "BEN": "BJ",
    "BES": "BQ",
    "BFA": "BF",
    "BGD": "BD",
    "BGR": "BG",
    "BHR": "BH",
    "BHS": "BS",
    "BIH": "BA",
    "BLM": "BL",
    "BLR": "BY",
    "BLZ": "BZ",
    "BMU": "BM",
    "BOL": "BO",
    "BRA": "BR",
    "BRB": "BB",
    "BRN": "BN",
    "BTN": "BT",
    "BVT": "BV",
    "BWA": "BW",
    "CAF": "CF",
    "CAN": "CA",
    "CCK": "CC",
    "CHE": "CH",
    "CHL": "CL",
    "CHN": "CN",
    "CIV": "CI",
    "CMR": "CM",
    "COD": "CD",
    "COG": "CG",
    "COK": "CK",
    "COL": "CO",
    "COM": "KM",
    "CPV": "CV",
    "CRI": "CR",
    "CUB": "CU",
    "CUW": "CW",
    "CXR": "CX",
    "CYM": "KY",
    "CYP": "CY",
    "CZE": "CZ",
    "DEU": "DE",
    "DJI": "DJ",
    "DMA": "DM",
    "DNK": "DK",
    "DOM": "DO",
    "DZA": "DZ",
    "ECU": "EC",
    "EGY": "EG",
    "ERI": "ER",
    "ESH": "EH",
    "ESP": "ES",
    "EST": "EE",
    "ETH": "ET",
    "FIN": "FI",
    "FJI": "FJ",
    "FLK": "FK",
    "FRA": "FR",
    "FRO": "FO",
    "FSM": "FM",
    "GAB": "GA",
    "GBR": "GB",
    "GEO": "GE",
    "GGY": "GG",
    "GHA": "GH",
    "GIB": "GI",
    "GIN": "GN",
    "GLP": "GP",
    "GMB": "GM",
    "GNB": "GW",
    "GNQ": "GQ",
    "GRC": "GR",
    "GRD": "GD",
    "GRL": "GL",
    "GTM": "GT",
    "GUF": "GF",
    "GUM": "GU",
    "GUY": "GY",
    "HKG": "HK",
    "HMD": "HM",
    "HND": "HN",
    "HRV": "HR",
    "HTI": "HT",
    "HUN": "HU",
    "IDN": "ID",
    "IMN": "IM",
    "IND": "IN",
    "IOT": "IO",
    "IRL": "IE",
    "IRN": "IR",
    "IRQ": "IQ",
    "ISL": "IS",
    "ISR": "IL",
    "ITA": "IT",
    "JAM": "JM",
    "JEY": "JE",
    "JOR": "JO",
    "JPN": "JP",
    "KAZ": "KZ",
    "KEN": "KE",
    "KGZ": "KG",
    "KHM": "KH",
    "KIR": "KI",
    "KNA": "KN",
    "KOR": "KR",
    "KWT": "KW",
    "LAO": "LA",
    "LBN": "LB",
    "LBR": "LR",
    "LBY": "LY",
    "LCA": "LC",
    "LIE": "LI",
    "LKA": "LK",
    "LSO": "LS",
    "LTU": "LT",
    "LUX": "LU",
    "LVA": "LV",
    "MAC": "MO",
    "MAF": "MF",
    "MAR": "MA",
    "MCO": "MC",
    "MDA": "MD",
    "MDG": "MG",
    "MDV": "MV",
    "MEX": "MX",
    "MHL": "MH",
    "MKD": "MK",
    "MLI": "ML",
    "MLT": "MT",
    "MMR": "MM",
    "MNE": "ME",
    "MNG": "MN",
    "MNP": "MP",
    "MOZ": "MZ",
    "MRT": "MR",
    "MSR": "MS",
    "MTQ": "MQ",
    "MUS": "MU",
    "MWI": "MW",
    "MYS": "MY",
    "MYT": "YT",
    "NAM": "NA",
    "NCL": "NC",
    "NER": "NE",
    "NFK": "NF",
    "NGA": "NG",
    "NIC": "NI",
    "NIU": "NU",
    "NLD": "NL",
    "NOR": "NO",
    "NPL": "NP",
    "NRU": "NR",
    "NZL": "NZ",
    "OMN": "OM",
    "PAK": "PK",
    "PAN": "PA",
    "PCN": "PN",
    "PER": "PE",
    "PHL": "PH",
    "PLW": "PW",
    "PNG": "PG",
    "POL": "PL",
    "PRI": "PR",
    "PRK": "KP",
    "PRT": "PT",
    "PRY": "PY",
    "PSE": "PS",
    "PYF": "PF",
    "QAT": "QA",
    "REU": "RE",
    "ROU": "RO",
    "RUS": "RU",
    "RWA": "RW",
    "SAU": "SA",
    "SDN": "SD",
    "SEN": "SN",
    "SGP": "SG",
    "SGS": "GS",
    "SHN": "SH",
    "SJM": "SJ",
    "SLB": "SB",
    "SLE": "SL",
    "SLV": "SV",
    "SMR": "SM",
    "SOM": "SO",
    "SPM": "PM",
    "SRB": "RS",
    "SSD": "SS",
    "STP": "ST",
    "SUR": "SR",
    "SVK": "SK",
    "SVN": "SI",
    "SWE": "SE",
    "SWZ": "SZ",
    "SXM": "SX",
    "SYC": "SC",
    "SYR": "SY",
    "TCA": "TC",
    "TCD": "TD",
    "TGO": "TG",
    "THA": "TH",
    "TJK": "TJ",
    "TKL": "TK",
    "TKM": "TM",
    "TLS": "TL",
    "TON": "TO",
    "TTO": "TT",
    "TUN": "TN",
    "TUR": "TR",
    "TUV": "TV",
    "TWN": "TW",
    "TZA": "TZ",
    "UGA": "UG",
    "UKR": "UA",
    "UMI": "UM",
    "URY": "UY",
    "USA": "US",
    "UZB": "UZ",
    "VAT": "VA",
    "VCT": "VC",
    "VEN": "VE",
    "VGB": "VG",
    "VIR": "VI",
    "VNM": "VN",
    "VUT": "VU",
    "WLF": "WF",
    "WSM": "WS",
    "YEM": "YE",
    "ZAF": "ZA",
    "ZMB": "ZM",
    "ZWE": "ZW",
}

# active ISO 4217 code -> name
CURRENCY_NAMES: dict[str, str] = {
    "AED": "UAE Dirham",
    "AFN": "Afghani",
    "ALL": "Lek",
    "AMD": "Armenian Dram",
    "ANG": "Netherlands Antillean Guilder",
    "AOA": "Kwanza",
    "ARS": "Argentine Peso",
    "AUD": "Australian Dollar",
    "AWG": "Aruban Florin",
    "AZN": "Azerbaijan Manat",
    "BAM": "Convertible Mark",
    "BBD": "Barbados Dollar",
    "BDT": "Taka",
    "BGN": "Bulgarian Lev",
    "BHD": "Bahraini Dinar",
    "BIF": "Burundi Franc",
    "BMD": "Bermudian Dollar",
    "BND": "Brunei Dollar",
    "BOB": "Boliviano",
    "BOV": "Mvdol",
    "BRL": "Brazilian Real",
    "BSD": "Bahamian Dollar",
    "BTN": "Ngultrum",
    "BWP": "Pula",
    "BYN": "Belarusian Ruble",
    "BZD": "Belize Dollar",
    "CAD": "Canadian Dollar",
    "CDF": "Congolese Franc",
    "CHE": "WIR Euro",
    "CHF": "Swiss Franc",
    "CHW": "WIR Franc",
    "CLF": "Unidad de Fomento",
    "CLP": "Chilean Peso",
    "CNY": "Yuan Renminbi",
    "COP": "Colombian Peso",
    "COU": "Unidad de Valor Real",
    "CRC": "Costa Rican Colon",
    "CUC": "Peso Convertible",
    "CUP": "Cuban Peso",
    "CVE": "Cabo Verde Escudo",
    "CZK": "Czech Koruna",
    "DJF": "Djibouti Franc",
    "DKK": "Danish Krone",
    "DOP": "Dominican Peso",
    "DZD": "Algerian Dinar",
    "EGP": "Egyptian Pound",
    "ERN": "Nakfa",
    "ETB": "Ethiopian Birr",
    "EUR": "Euro",
    "FJD": "Fiji Dollar",
    "FKP": "Falkland Islands Pound",
    "GBP": "Pound Sterling",
    "GEL": "Lari",
    "GHS": "Ghana Cedi",
    "GIP": "Gibraltar Pound",
    "GMD": "Dalasi",
    "GNF": "Guinean Franc",
    "GTQ": "Quetzal",
    "GYD": "Guyana Dollar",
    "HKD": "Hong Kong Dollar",
    "HNL": "Lempira",
    "HRK": "Kuna",
    "HTG": "Gourde",
    "HUF": "Forint",
    "IDR": "Rupiah",
    "ILS": "New Israeli Sheqel",
    "INR": "Indian Rupee",
    "IQD": "Iraqi Dinar",
    "IRR": "Iranian Rial",
    "ISK": "Iceland Krona",
    "JMD": "Jamaican Dollar",
    "JOD": "Jordanian Dinar",
    "JPY": "Yen",
    "KES": "Kenyan Shilling",
    "KGS": "Som",
    "KHR": "Riel",
    "KMF": "Comorian Franc",
    "KPW": "North Korean Won",
    "KRW": "Won",
    "KWD": "Kuwaiti Dinar",
    "KYD": "Cayman Islands Dollar",
    "KZT": "Tenge",
    "LAK": "Lao Kip",
    "LBP": "Lebanese Pound",
    "LKR": "Sri Lanka Rupee",
    "LRD": "Liberian Dollar",
    "LSL": "Loti",
    "LYD": "Libyan Dinar",
    "MAD": "Moroccan Dirham",
    "MDL": "Moldovan Leu",
    "MGA": "Malagasy Ariary",
    "MKD": "Denar",
    "MMK": "Kyat",
    "MNT": "Tugrik",
    "MOP": "Pataca",
    "MRU": "Ouguiya",
    "MUR": "Mauritius Rupee",
    "MVR": "Rufiyaa",
    "MWK": "Malawi Kwacha",
    "MXN": "Mexican Peso",
    "MXV": "Mexican Unidad de Inversion (UDI)",
    "MYR": "Malaysian Ringgit",
    "MZN": "Mozambique Metical",
    "NAD": "Namibia Dollar",
    "NGN": "Naira",
    "NIO": "Cordoba Oro",
    "NOK": "Norwegian Krone",
    "NPR": "Nepalese Rupee",
    "NZD": "New Zealand Dollar",
    "OMR": "Rial Omani",
    "PAB": "Balboa",
    "PEN": "Sol",
    "PGK": "Kina",
    "PHP": "Philippine Peso",
    "PKR": "Pakistan Rupee",
    "PLN": "Zloty",
    "PYG": "Guarani",
    "QAR": "Qatari Rial",
    "RON": "Romanian Leu",
    "RSD": "Serbian Dinar",
    "RUB": "Russian Ruble",
    "RWF": "Rwanda Franc",
    "SAR": "Saudi Riyal",
    "SBD": "Solomon Islands Dollar",
    "SCR": "Seychelles Rupee",
    "SDG": "Sudanese Pound",
    "SEK": "Swedish Krona",
    "SGD": "Singapore Dollar",
    "SHP": "Saint Helena Pound",
    "SLE": "Leone",
    "SLL": "Leone",
    "SOS": "Somali Shilling",
    "SRD": "Surinam Dollar",
    "SSP": "South Sudanese Pound",
    "STN": "Dobra",
    "SVC": "El Salvador Colon",
    "SYP": "Syrian Pound",
    "SZL": "Lilangeni",
    "THB": "Baht",
    "TJS": "Somoni",
    "TMT": "Turkmenistan New Manat",
    "TND": "Tunisian Dinar",
    "TOP": "Pa’anga",
    "TRY": "Turkish Lira",
    "TTD": "Trinidad and Tobago Dollar",
    "TWD": "New Taiwan Dollar",
    "TZS": "Tanzanian Shilling",
    "UAH": "Hryvnia",
    "UGX": "Uganda Shilling",
    "USD": "US Dollar",
    "USN": "US Dollar (Next day)",
    "UYI": "Uruguay Peso en Unidades Indexadas (UI)",
    "UYU": "Peso Uruguayo",
    "UYW": "Unidad Previsional",
    "UZS": "Uzbekistan Sum",
    "VED": "Bolívar Soberano",
    "VES": "Bolívar Soberano",
    "VND": "Dong",
    "VUV": "Vatu",
    "WST": "Tala",
    "XAF": "CFA Franc BEAC",
    "XAG": "Silver",
    "XAU": "Gold",
    "XBA": "Bond Markets Unit European Composite Unit (EURCO)",
    "XBB": "Bond Markets Unit European Monetary Unit (E.M.U.-6)",
    "XBC": "Bond Markets Unit European Unit of Account 9 (E.U.A.-9)",
    "XBD": "Bond Markets Unit European Unit of Account 17 (E.U.A.-17)",
    "XCD": "East Caribbean Dollar",
    "XDR": "SDR (Special Drawing Right)",
    "XOF": "CFA Franc BCEAO",
    "XPD": "Palladium",
    "XPF": "CFP Franc",
    "XPT": "Platinum",
    "XSU": "Sucre",
    "XTS": "Codes specifically reserved for testing purposes",
    "XUA": "ADB Unit of Account",
    "XXX": "The codes assigned for transactions where no currency is involved",
    "YER": "Yemeni Rial",
    "ZAR": "Rand",
    "ZMW": "Zambian Kwacha",
    "ZWL": "Zimbabwe Dollar",
}

COUNTRIES = Catalog(
    "countries",
    "country",
    "ISO 3166-1 alpha-2 country codes (customerProfile.address.country).",
    tuple(CatalogValue(code, name) for code, name in COUNTRY_NAMES.items()),
)

# Names people use for a country that are not its ISO name (nor its code): the EU's "UK" and "EL",
# short and older names, names in the country's own language. Folded like every catalog key.
_COUNTRY_ALIASES: dict[str, tuple[str, ...]] = {
    "GB": ("UK", "Britain", "Great Britain", "England", "Scotland", "Wales", "Northern Ireland"),
    "GR": ("EL", "Hellas"),
    "US": ("USA", "America", "United States of America", "the States"),
    "NL": ("Holland", "The Netherlands", "Nederland"),
    "DE": ("Deutschland",),
    "AT": ("Osterreich",),
    "CH": ("Schweiz", "Suisse", "Svizzera"),
    "ES": ("Espana",),
    "IT": ("Italia",),
    "BR": ("Brasil",),
    "SE": ("Sverige",),
    "NO": ("Norge",),
    "DK": ("Danmark",),
    "FI": ("Suomi",),
    "PL": ("Polska",),
    "JP": ("Nippon", "Nihon"),
    "KR": ("Korea", "Republic of Korea"),
    "RU": ("Russia",),
    "CZ": ("Czech Republic",),
    "TR": ("Turkey",),
    "VN": ("Viet Nam",),
    "AE": ("UAE", "Emirates"),
    "CI": ("Ivory Coast",),
    "SZ": ("Swaziland",),
    "MM": ("Burma",),
    "VA": ("Vatican", "Vatican City"),
    "CV": ("Cape Verde",),
    "BN": ("Brunei",),
    "FM": ("Micronesia",),
    "PS": ("Palestine",),
    "MK": ("Macedonia",),
    "CD": ("DRC", "DR Congo", "Democratic Republic of the Congo"),
    "CG": ("Republic of the Congo",),
    "MO": ("Macau",),
    "HK": ("Hong Kong SAR",),
}
COUNTRY_ALIASES: dict[str, str] = {
    _fold(alias): code for code, aliases in _COUNTRY_ALIASES.items() for alias in aliases
}
CURRENCIES = Catalog(
    "currencies",
    "currency",
    "Active ISO 4217 currency codes (details.currency, registration contract and solution currency).",
    tuple(CatalogValue(code, name) for code, name in CURRENCY_NAMES.items()),
)

# Every catalog by name; the MCP layer serves each as ``catalog.uri`` (``catalog://products`` ...).
CATALOGS: dict[str, Catalog] = {
    catalog.name: catalog
    for catalog in (
        PRODUCTS,
        SERVICES,
        INDUSTRIES,
        SOLUTIONS,
        CUSTOMER_SIZES,
        ASSISTANCE_REQUEST_CODES,
        PARTNER_ROLES,
        SOLUTION_AREAS,
        SOLUTION_PLAYS,
        REGISTRATION_TYPES,
        CONTRACT_TERMS,
        PRICING_MODELS,
        PRIMARY_DEPLOYMENT,
        COUNTRIES,
        CURRENCIES,
    )
}
