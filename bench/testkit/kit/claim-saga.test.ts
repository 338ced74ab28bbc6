import { defineSuite } from '../suite.js';

defineSuite('kit', 'claim-saga');
