import { defineSuite } from '../suite.js';

defineSuite('harness', 'claim-saga');
