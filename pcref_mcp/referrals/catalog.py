"""Catalog values as data: the ids the service accepts in a referral, with the labels people say.

Sources (see ``../shared/reference``): "Referral resources" (products, services, industries, category
solutions, customer sizes), the connector definition (assistance request codes, registration enums),
"Create a referral" (partner roles, FY24 solution areas and plays). Countries and currencies (ISO
3166-1, ISO 4217) are in ``iso``; what a catalog is and how a typed value is looked up, in
``catalog_values``; what other modules use of both is re-exported here (the country aliases and
alpha-3 codes ``iso`` reads a country with stay there). The MCP layer exposes every entry of
``CATALOGS`` as a resource (``catalog://products`` ...), and the write models check ids against them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pcref_mcp.referrals.catalog_values import Catalog, CatalogValue
from pcref_mcp.referrals.iso import (
    COUNTRIES,
    COUNTRY_NAMES,
    CURRENCIES,
    CURRENCY_NAMES,
    DOLLAR_CURRENCIES,
    country_code,
    currency_code,
)
from pcref_mcp.referrals.wire_values import (
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
    "COUNTRY_NAMES",
    "CURRENCIES",
    "CURRENCY_NAMES",
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


def lookup(catalog: str, text: str, *, field: str | None = None) -> str:
    """``lookup("products", "dynamics 365 enterprise") == "Dynamics365Enterprise"``."""
    return CATALOGS[catalog].lookup(text, field=field)


def is_solution_profile_id(text: object) -> bool:
    """True for a marketplace solution id (``SOL-6115380-IPC`` or a GUID), not a category id."""
    return isinstance(text, str) and SOLUTION_PROFILE_ID.fullmatch(text.strip()) is not None


# --- helpers --------------------------------------------------------------------------------------


def _values(*items: str | tuple[str, str]) -> tuple[CatalogValue, ...]:
    return tuple(CatalogValue(item) if isinstance(item, str) else CatalogValue(*item) for item in items)


def _from_enum(enum: Iterable[Any], labels: dict[str, str]) -> tuple[CatalogValue, ...]:
    return tuple(CatalogValue(str(member), labels.get(str(member))) for member in enum)


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
